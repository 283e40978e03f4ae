"""The `suggest` stage: completion as a nurse uses it — a simulated nurse types each scored test note with a
system's word suggestions → metrics/suggest.json (the headline) and metrics/detail/suggest.json.

    python -m notelm.stages.suggest --base models/base/smollm2-135m --finetuned models/finetuned \
        --data data/prepared --out generations/suggestions.jsonl --metrics metrics/suggest.json \
        --detail metrics/detail/suggest.json

The nurse types the note's reference after its prompt (with data.history, the prompt holds the chart). At every
word boundary a system proposes its next words (at most `suggest.max_words`); the nurse accepts the longest
prefix that matches the reference's next words with one keystroke (Tab), and otherwise types the next word and a
space (src/notelm/evaluation/keystrokes.py). Systems: the pre-trained and the fine-tuned model (greedy,
src/notelm/generation/suggest.py); two model-free proposers (src/notelm/evaluation/proposers.py): `chart_copy`,
the patient's earlier note aligned to the typed text at every word (the `aligned_copy` rule), and `ngram`, the
most frequent continuation of the typed text's last words in train; and `chart_aware`
(src/notelm/evaluation/choose.py): at every boundary the fine-tuned model's proposal, the chart's and the
table's are candidates, the fine-tuned model scores them in one forward (in `suggest.precision`), and the one
with the most keystrokes expected to be saved is shown, or nothing below a threshold chosen on validation notes
(`suggest.tune_notes` of data/prepared/val.jsonl; never test). `chart_aware_oracle` shows at every boundary the
candidate with the most right words (greedy per boundary: a reference for a better choice, not an upper bound).

Per system: keystroke_savings (1 − keystrokes / characters, each word counted with its space), its ceiling
(every suggestion right and accepted whole), accept_rate, next_word_accuracy and mean_accepted_words, ratios of
sums over notes with patient-clustered 95 % intervals; per model and for chart_aware,
`<system>_vs_best_proposer`: its keystroke savings − the best proposer's, paired over the same notes, with a
verdict; `chart_aware_choice`: the threshold, the validation savings of every threshold tried, the precision
and the share of shown suggestions from each source. Per note and system, the counts and the proposals shown
(`suggestions`, note text) go to generations/suggestions.jsonl, a DVC output.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.models import recorded_row
from notelm.config.names import (
    BEST_PROPOSER,
    CHART_AWARE,
    CHOICE,
    CLAIMANTS,
    ORACLE,
    PROPOSERS,
    VARIANTS,
    scored,
    suggest_headline,
)
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
from notelm.data.history import alternate
from notelm.evaluation.bootstrap import Resampling, interval, replicates, verdict
from notelm.evaluation.choose import Candidate, Note, choose, oracle, tune
from notelm.evaluation.choose import typed as typed_choices
from notelm.evaluation.keystrokes import (
    COUNTS,
    ONE_MINUS,
    RATIOS,
    Typing,
    simulate,
    summary,
)
from notelm.evaluation.proposers import NGram, chart_copies
from notelm.generation.suggest import candidate_probabilities, propose_all
from notelm.training.plan import resolve_precision
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def typed(proposals: list[list[str]], words: list[str], max_words: int) -> tuple[Typing, list[list[str]]]:
    """The nurse's counts for one note whose proposal at boundary i is proposals[i], and the proposals shown."""
    visited: list[int] = []
    typing = simulate(words, proposals.__getitem__, max_words, visited)
    return typing, [proposals[i] for i in visited]


def model_proposals(model, tokenizer, rows: list[dict], cfg: SuggestParams) -> list[list[list[str]]]:
    """Per row, the model's proposal at every word boundary of its reference."""
    tick = time.perf_counter()
    out = [propose_all(model, tokenizer, r["prompt"], r["target"].split(), cfg.max_words, cfg.budget) for r in rows]
    log.info("suggest: %d notes, %d boundaries in %.0fs", len(rows), sum(map(len, out)), time.perf_counter() - tick)
    return out


def proposer_proposals(name: str, rows: list[dict], split_rows: list[dict], ngram: NGram,
                       cfg: SuggestParams) -> list[list[list[str]]]:
    """Per row, a model-free proposer's proposal at every word boundary of its reference (`split_rows`: the split
    whose earlier notes are the chart)."""
    if name == "ngram":
        tools = [(ngram, r["prompt"].split()) for r in rows]
    else:
        tools = [(copy, []) for copy in chart_copies(rows, split_rows)]
    return [[tool.propose(start + words[:i], cfg.max_words) for i in range(len(words))]
            for (tool, start), words in zip(tools, (r["target"].split() for r in rows))]


def chart_aware_notes(scorer, tokenizer, rows: list[dict], own: list[list[list[str]]],
                      others: dict[str, list[list[list[str]]]], cfg: SuggestParams) -> list[Note]:
    """Per row, its reference words and at every boundary the distinct candidates — the fine-tuned model's own
    proposal (`own`), then `others`' (the chart's, the n-gram table's) — with the probabilities `scorer` gives
    their words (notelm.generation.suggest.candidate_probabilities)."""
    notes = []
    for r, row in enumerate(rows):
        words, per_boundary = row["target"].split(), []
        for i in range(len(words)):
            seen: dict[tuple[str, ...], str] = {}
            for source, proposal in [(VARIANTS[1], own[r][i]), *((s, p[r][i]) for s, p in others.items())]:
                if proposal:
                    seen.setdefault(tuple(proposal[: cfg.max_words]), source)
            per_boundary.append([(source, list(ws)) for ws, source in seen.items()])
        probs = candidate_probabilities(scorer, tokenizer, row["prompt"], words,
                                        [[ws for _, ws in cands] for cands in per_boundary])
        notes.append((words, [[Candidate(s, ws, p) for (s, ws), p in zip(cands, ps)]
                              for cands, ps in zip(per_boundary, probs)]))
    return notes


Inputs = tuple[list[dict], list[list[list[str]]], dict[str, list[list[list[str]]]]]  # rows, own, others


def chart_aware(scorer, tokenizer, test: Inputs, val: Inputs, cfg: SuggestParams) -> tuple[list, list, dict[str, Any]]:
    """The chart-aware system's proposals over the test rows, the oracle's, and the choice: the threshold with
    the highest keystroke savings on the `val` notes (test is never read for it), the savings of every threshold
    tried there and of each candidate's source alone (what the app's default source is decided on), and the
    share of the test suggestions shown that came from each source."""
    val_notes = chart_aware_notes(scorer, tokenizer, *val, cfg)
    threshold, curve = tune(val_notes, cfg.max_words)
    notes = chart_aware_notes(scorer, tokenizer, *test, cfg)
    system = [[(c.words if (c := choose(cands, threshold)) else []) for cands in per] for _, per in notes]
    best = [[(c.words if (c := oracle(cands, words, i)) else []) for i, cands in enumerate(per)]
            for words, per in notes]
    shown = Counter(s for n in notes for s in typed_choices(n, lambda c, i: choose(c, threshold), cfg.max_words)[1] if s)
    rows, own, others = val
    on_val = {name: summary([typed(p, r["target"].split(), cfg.max_words)[0] for r, p in zip(rows, per_row)])
              ["keystroke_savings"] for name, per_row in {VARIANTS[1]: own, **others}.items()}
    choice = {"threshold": threshold, "chosen_on": "val", "tuning_notes": len(rows),
              "keystroke_savings_by_threshold": curve, "val_keystroke_savings": {**on_val, CHART_AWARE: curve[
                  f"{threshold:g}"]},
              "shown_from": {k: v / max(1, sum(shown.values())) for k, v in sorted(shown.items())}}
    return system, best, choice


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
    for variant in (v for v in CLAIMANTS if v in counts):
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
    val_rows = read_jsonl(split_path("val", paths.data))
    tuning = alternate(val_rows, cfg.tune_notes)
    train = read_jsonl(split_path("train", paths.data))
    ngram = NGram([f"{r['prompt']} {r['target']}" for r in train], cfg.ngram_order)
    proposals = {VARIANTS[0]: model_proposals(*load_checkpoint(base, "float32", trust), rows, cfg)}
    model, tokenizer = load_checkpoint(Path(paths.finetuned), "float32", trust)
    proposals[VARIANTS[1]] = model_proposals(model, tokenizer, rows, cfg)
    tuning_own = model_proposals(model, tokenizer, tuning, cfg)
    proposals.update({p: proposer_proposals(p, rows, split_rows, ngram, cfg) for p in PROPOSERS})
    precision = resolve_precision(cfg.precision)
    scorer = model if precision == "fp32" else load_checkpoint(Path(paths.finetuned), "bfloat16", trust)[0]
    val = (tuning, tuning_own, {p: proposer_proposals(p, tuning, val_rows, ngram, cfg) for p in PROPOSERS})
    test = (rows, proposals[VARIANTS[1]], {p: proposals[p] for p in PROPOSERS})
    proposals[CHART_AWARE], proposals[ORACLE], choice = chart_aware(scorer, tokenizer, test, val, cfg)
    choice["precision"] = precision
    typings: dict[str, list[Typing]] = {}
    lines = []
    for system, per_row in proposals.items():
        typings[system] = []
        for row, props in zip(rows, per_row):
            typing, shown = typed(props, row["target"].split(), cfg.max_words)
            typings[system].append(typing)
            lines.append({"note_id": row["note_id"], "system": system, **asdict(typing), "suggestions": shown})
    result = {**scores(typings, [r["subject_id"] for r in rows], cfg), CHOICE: choice}
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
