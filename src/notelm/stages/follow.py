"""The `follow` stage: the chart-aware system's continuations of the scored test prompts → generations/chart_aware.jsonl
(scored by evaluate beside the models and baselines) and metrics/follow.json (the threshold and how it was chosen).

    python -m notelm.stages.follow --finetuned models/finetuned --base models/base/smollm2-135m \
        --data data/prepared --out generations/chart_aware.jsonl --metrics metrics/follow.json

The fine-tuned model continues each prompt, offered at every round the words that follow, in the patient's most
recent earlier note of the same split, the place the note has reached (the `aligned_copy` rule redone as the
note grows: notelm.evaluation.proposers.ChartCopy); it keeps them while it gives each token at least probability
tau, else writes its own greedy token (notelm.generation.follow). tau is the one of `follow.taus` whose
continuations of `follow.tune_notes` validation notes have the highest mean ROUGE-L against their references
(cut at data.max_target_words, as evaluate cuts), the larger on a tie; test is never read for it (the token
budget of the validation runs comes from the validation references). Prompts keep their last
`generate.max_prompt_tokens` tokens and continuations get generate's token budget, as generate's do. A note
without an earlier note gets the model's own continuation.

metrics/follow.json: the threshold, the split and notes it was chosen on, every tau's validation ROUGE-L, and the
share of the test continuations' tokens copied from the chart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from notelm.config.data import DataParams
from notelm.config.follow import FollowParams
from notelm.config.generate import GenerateParams
from notelm.config.models import recorded_row
from notelm.config.names import scored
from notelm.core import runner
from notelm.core.files import read_jsonl, write_json, write_jsonl
from notelm.core.loader import load_section
from notelm.core.paths import (
    CHART_AWARE_GENERATIONS,
    FINETUNED,
    FOLLOW_METRICS,
    PREPARED_DIR,
    base_model_dir,
    split_path,
)
from notelm.data.history import alternate
from notelm.evaluation.examples import cut_words
from notelm.evaluation.proposers import chart_copies, chart_drafter
from notelm.evaluation.rouge import rouge_scores
from notelm.generation.decoding import prompt_ids, token_budget
from notelm.generation.follow import Followed, follow
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def continue_all(model, tokenizer, rows: list[dict], split_rows: list[dict], tau: float, gen: GenerateParams,
                 cap: int, k: int) -> list[Followed]:
    """Each row's continuation, following its chart (its patient's most recent earlier note of `split_rows`), with
    the token budget generate would give these rows (from their own references: test never sets validation's)."""
    budget, _ = token_budget(tokenizer, [r["target"] for r in rows], gen, cap)
    out = []
    for row, copy in zip(rows, chart_copies(rows, split_rows)):
        out.append(follow(model, tokenizer, row["prompt"], chart_drafter(copy.source, k), tau, budget, cap,
                          gen.max_prompt_tokens))
    return out


def choose_tau(model, tokenizer, val_rows: list[dict], cfg: FollowParams, gen: GenerateParams,
               cap: int) -> dict[str, Any]:
    """The tau of cfg.taus with the highest mean ROUGE-L over the tuning notes of `val_rows` (validation only)."""
    rows = alternate(val_rows, cfg.tune_notes)
    refs = [cut_words(r["target"], cap) for r in rows]
    curve = {}
    for tau in cfg.taus:
        texts = [cut_words(f.completion, cap) for f in continue_all(model, tokenizer, rows, val_rows, tau, gen, cap,
                                                                     cfg.draft_words)]
        curve[f"{tau:g}"] = float(rouge_scores(texts, refs, ("rougeL",))["rougeL"].mean()) if rows else float("nan")
    best = max(cfg.taus, key=lambda t: (curve[f"{t:g}"], t))
    return {"threshold": best, "chosen_on": "val", "tuning_notes": len(rows), "val_rougeL_by_threshold": curve}


@dataclass(frozen=True)
class Paths:
    """The follow stage's inputs and outputs."""

    finetuned: str = FINETUNED
    """Fine-tuned checkpoint."""
    base: str | None = None
    """Base model whose recorded row gives consent to run repository code (default: models/base/<model>)."""
    data: str = PREPARED_DIR
    """Split directory (val for tau, test for the notes and their charts)."""
    out: str = CHART_AWARE_GENERATIONS
    """The continuations, in the generations files' format."""
    metrics: str = FOLLOW_METRICS
    """The threshold and how it was chosen."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The follow stage: choose tau on validation notes, continue every scored test prompt with it; write
    `paths.out` and `paths.metrics`. Returns the metrics."""
    cfg = load_section(FollowParams, params)
    cap = load_section(DataParams, params).max_target_words
    trust = recorded_row(paths.base or base_model_dir(params["model"])).trust_remote_code
    split_rows = read_jsonl(split_path("test", paths.data))
    rows = scored(split_rows)[: cfg.limit]
    gen = load_section(GenerateParams, params)
    model, tokenizer = load_checkpoint(Path(paths.finetuned), "float32", trust)
    tick = time.perf_counter()
    result = choose_tau(model, tokenizer, read_jsonl(split_path("val", paths.data)), cfg, gen, cap)
    done = continue_all(model, tokenizer, rows, split_rows, result["threshold"], gen, cap, cfg.draft_words)
    lines = [{"note_id": r["note_id"], "prompt": r["prompt"], "reference": r["target"],
              "prompt_tokens": len(prompt_ids(tokenizer, r["prompt"], gen.max_prompt_tokens)), **asdict(f)}
             for r, f in zip(rows, done)]
    result["from_chart"] = sum(f.from_chart for f in done) / max(1, sum(f.completion_tokens for f in done))
    write_jsonl(paths.out, lines)
    write_json(paths.metrics, result)
    log.info("follow: tau %g (val ROUGE-L %s); %d continuations, %.0f%% of their tokens from the chart, in %.0fs",
             result["threshold"], result["val_rougeL_by_threshold"], len(lines), 100 * result["from_chart"],
             time.perf_counter() - tick)
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("follow", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
