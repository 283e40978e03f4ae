"""The `suggest` stage: completion as a nurse uses it — a simulated nurse types each scored test note with a
system's word suggestions → metrics/suggest.json (the headline) and metrics/detail/suggest.json.

    python -m notelm.stages.suggest --base models/base/smollm2-135m --finetuned models/finetuned \
        --data data/prepared --out generations/suggestions.jsonl --metrics metrics/suggest.json \
        --detail metrics/detail/suggest.json

The nurse types the note's reference after its prompt (with data.history, the prompt holds the chart). At every
word boundary a system proposes its next words (at most `suggest.max_words`); the nurse accepts the longest
prefix that matches the reference's next words with one keystroke (Tab), and otherwise types the next word and a
space (src/notelm/evaluation/keystrokes.py). Systems: the pre-trained and the fine-tuned model (greedy,
src/notelm/generation/suggest.py) and two model-free proposers (src/notelm/evaluation/proposers.py): `chart_copy`, the patient's
earlier note aligned to the typed text at every word (the `aligned_copy` rule), and `ngram`, the most frequent
continuation of the typed text's last words in train.

Per system: keystroke_savings (1 − keystrokes / characters, each word counted with its space), its ceiling
(every suggestion right and accepted whole), accept_rate, next_word_accuracy and mean_accepted_words, ratios of
sums over notes with patient-clustered 95 % intervals; per model, `<variant>_vs_best_proposer`: its keystroke
savings − the best proposer's, paired over the same notes, with a verdict. The proposals shown (note text) go to
generations/suggestions.jsonl, a DVC output.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.models import recorded_row
from notelm.config.names import BEST_PROPOSER, PROPOSERS, VARIANTS, scored, suggest_headline
from notelm.config.suggest import SuggestParams
from notelm.core import runner
from notelm.core.files import read_jsonl, write_json, write_jsonl
from notelm.core.loader import load_section
from notelm.core.paths import (
    FINETUNED,
    PREPARED_DIR,
    SUGGEST_DETAIL,
    SUGGEST_METRICS,
    SUGGESTIONS,
    base_model_dir,
    split_path,
)
from notelm.evaluation.bootstrap import Resampling, interval, replicates, verdict
from notelm.evaluation.keystrokes import COUNTS, ONE_MINUS, RATIOS, Typing, simulate, summary
from notelm.evaluation.proposers import NGram, chart_copies
from notelm.generation.suggest import propose_all
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def typed(proposals: list[list[str]], words: list[str], max_words: int) -> tuple[Typing, list[list[str]]]:
    """The nurse's counts for one note whose proposal at boundary i is proposals[i], and the proposals shown."""
    shown: list[list[str]] = []

    def propose(i: int) -> list[str]:
        shown.append(proposals[i])
        return proposals[i]

    return simulate(words, propose, max_words), shown


def model_proposals(model_dir: Path, trust: bool, rows: list[dict], cfg: SuggestParams) -> list[list[list[str]]]:
    """Per row, the model's proposal at every word boundary of its reference."""
    model, tokenizer = load_checkpoint(model_dir, "float32", trust)
    tick = time.perf_counter()
    out = [propose_all(model, tokenizer, r["prompt"], r["target"].split(), cfg.max_words, cfg.budget) for r in rows]
    log.info("suggest %s: %d notes, %d boundaries in %.0fs", model_dir, len(rows), sum(map(len, out)),
             time.perf_counter() - tick)
    return out


def proposer_proposals(name: str, rows: list[dict], split_rows: list[dict], train: list[dict],
                       cfg: SuggestParams) -> list[list[list[str]]]:
    """Per row, a model-free proposer's proposal at every word boundary of its reference."""
    if name == "ngram":
        ngram = NGram([f"{r['prompt']} {r['target']}" for r in train], cfg.ngram_order)
        tools = [(ngram, r["prompt"].split()) for r in rows]
    else:
        tools = [(copy, []) for copy in chart_copies(rows, split_rows)]
    return [[tool.propose(start + words[:i], cfg.max_words) for i in range(len(words))]
            for (tool, start), words in zip(tools, (r["target"].split() for r in rows))]


def ratio(num: np.ndarray, den: np.ndarray, resampling: Resampling, cfg: SuggestParams, metric: str) -> dict[str, float]:
    """A metric of keystrokes.RATIOS over notes with its patient-clustered interval."""
    if not den.sum():  # e.g. no suggestion shown: no accept rate (null, which DVC reads; NaN it does not)
        return {metric: None, f"{metric}_ci_low": None, f"{metric}_ci_high": None}
    reps = replicates(num, resampling, cfg.bootstrap_samples, cfg.seed, weights=den)[:, 0]
    point = num.sum() / den.sum()
    low, high = interval(point, reps)
    if metric in ONE_MINUS:
        point, low, high = 1 - point, 1 - high, 1 - low
    return {metric: point, f"{metric}_ci_low": low, f"{metric}_ci_high": high}


def scores(typings: dict[str, list[Typing]], subjects: list, cfg: SuggestParams) -> dict[str, Any]:
    """Every system's metrics with intervals, and each model's keystroke savings − the best proposer's."""
    resampling = Resampling.by(subjects)
    counts = {s: {k: np.array([getattr(t, k) for t in ts], dtype=float) for k in COUNTS}
              for s, ts in typings.items()}
    out: dict[str, Any] = {}
    for system, c in counts.items():
        out[system] = {}
        for metric, (num, den) in RATIOS.items():
            out[system].update(ratio(c[num], c[den], resampling, cfg, metric))
    best = max((p for p in PROPOSERS if p in out), key=lambda p: out[p]["keystroke_savings"])
    for variant in (v for v in VARIANTS if v in counts):
        saved = counts[best]["keystrokes"] - counts[variant]["keystrokes"]  # keystrokes the model saves over it
        chars = counts[variant]["characters"]
        reps = replicates(saved, resampling, cfg.bootstrap_samples, cfg.seed, weights=chars)[:, 0]
        point = saved.sum() / chars.sum()
        low, high = interval(point, reps)
        out[f"{variant}_vs_{BEST_PROPOSER}"] = {
            "keystroke_savings": point, "keystroke_savings_ci_low": low, "keystroke_savings_ci_high": high,
            "keystroke_savings_verdict": verdict(low, high, "higher"), "keystroke_savings_baseline": best}
    return {**out, "n_examples": len(subjects), "clusters": resampling.n_clusters, "max_words": cfg.max_words}


@dataclass(frozen=True)
class Paths:
    """The suggest stage's inputs and outputs."""

    base: str | None = None
    """Pre-trained checkpoint, whose notelm_source.json holds the model row (default: models/base/<model>)."""
    finetuned: str = FINETUNED
    """Fine-tuned checkpoint."""
    data: str = PREPARED_DIR
    """Split directory (train for the n-gram proposer, test for the notes and their charts)."""
    out: str = SUGGESTIONS
    """Per note and system: the counts and the proposals shown."""
    metrics: str = SUGGEST_METRICS
    """The headline: keystroke savings and accept rate per system, each model against the best proposer."""
    detail: str = SUGGEST_DETAIL
    """Every measure per system with its interval, and the paired differences with theirs."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The suggest stage: type every scored test note with each system's suggestions; write `paths.out`,
    `paths.detail` and `paths.metrics` (its headline). Returns the detail."""
    cfg = load_section(SuggestParams, params)
    base = Path(paths.base or base_model_dir(params["model"]))
    trust = recorded_row(base).trust_remote_code
    split_rows = read_jsonl(split_path("test", paths.data))
    rows = scored(split_rows)[: cfg.limit]
    train = read_jsonl(split_path("train", paths.data))
    proposals = {v: model_proposals(d, trust, rows, cfg) for v, d in zip(VARIANTS, (base, Path(paths.finetuned)))}
    proposals.update({p: proposer_proposals(p, rows, split_rows, train, cfg) for p in PROPOSERS})
    typings: dict[str, list[Typing]] = {}
    lines = []
    for system, per_row in proposals.items():
        typings[system] = []
        for row, props in zip(rows, per_row):
            typing, shown = typed(props, row["target"].split(), cfg.max_words)
            typings[system].append(typing)
            lines.append({"note_id": row["note_id"], "system": system, **asdict(typing), "shown": shown})
    result = scores(typings, [r["subject_id"] for r in rows], cfg)
    write_jsonl(paths.out, lines)
    write_json(paths.detail, result)
    write_json(paths.metrics, suggest_headline(result))
    log.info("suggest: keystroke savings %s", ", ".join(f"{s} {summary(t)['keystroke_savings']:.3f}"
                                                        for s, t in typings.items()))
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("suggest", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
