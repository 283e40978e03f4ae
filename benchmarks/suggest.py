"""Suggestion latency of the default model on this machine: the page's suggestions while typing, plain and with
drafts the model verifies, in fp32, bf16 and int8 weights, and the suggest stage's every-boundary-at-once.

The first suggestion of a note reads the whole typed prompt; each following one comes after one more word is
typed, the cached text re-used (notelm.generation.suggest.Suggester), and proposes the greedy next words (at most
`suggest.max_words`, at most `suggest.budget` tokens). With drafts, each forward also checks the words a
model-free drafter guesses next (the rest of the previous suggestion, the chart's aligned span, the n-gram
table, prompt lookup: notelm.evaluation.proposers.drafters) and keeps those equal to the model's own choices: the
suggestions are the plain ones (the `same` column counts it). bf16 and int8 (torch's dynamic int8 linear layers,
torch.ao.quantization.quantize_dynamic) change the weights, so their suggestions may differ from fp32's; `same`
counts the suggestions equal to the fp32 ones.

The share of the limit is the work done — 2·N FLOPs per token fed through the model, N the parameters — over
the seconds taken, against a square fp32 GEMM's FLOP/s measured in the same run. Targets (issue 32): after the
first, p95 ≤ 300 ms and p50 ≤ 100 ms.

    python benchmarks/suggest.py                               # 8 test notes, 24 words typed each
    python benchmarks/suggest.py --notes 16 --model-dir models/base/smollm2-135m

Needs `make repro` (or `dvc repro train prepare`) first.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from limits import (  # benchmarks/, on the path when run as a script
    emulated,
    gemm_flops,
    parameter_count,
)
from results import save

from notelm.config.names import note_part, scored
from notelm.config.suggest import SuggestParams
from notelm.core.files import read_jsonl
from notelm.core.loader import load_params, load_section
from notelm.core.paths import FINETUNED, split_path
from notelm.evaluation.proposers import NGram, chart_copies, drafters
from notelm.generation.suggest import Suggester, propose_all
from notelm.training.weights import load_checkpoint


def type_notes(model, tokenizer, rows, tools, cfg, words: int) -> dict:
    """Type each row's first `words` reference words after its prompt, a suggestion after each; per suggestion
    its seconds, text and Work (the first of each note apart)."""
    out = {"first": [], "following": [], "texts": [], "work": []}
    for r, (chart, ngram) in zip(rows, tools):
        typist = Suggester(model, tokenizer, cfg.max_words, cfg.budget,
                           drafters(chart, ngram, cfg.max_words + 1) if ngram is not None else None)
        text = r["prompt"]
        for i, word in enumerate([None, *r["target"].split()[:words]]):
            text = text if word is None else f"{text} {word}"
            tick = time.perf_counter()
            out["texts"].append(typist.propose_text(text)[0])
            out["first" if i == 0 else "following"].append(time.perf_counter() - tick)
            out["work"].append((i, typist.work))
    return out


def row(name: str, run: dict, plain: list[str], params: int, gemm: float) -> list[str]:
    """One table row: latency after the first, forwards and accepted draft tokens per suggestion, same as fp32."""
    ms = 1000 * np.array(run["following"])
    work = [w for i, w in run["work"] if i > 0]
    fed, drafted, accepted = (sum(getattr(w, k) for w in work) for k in ("fed", "drafted", "accepted"))
    share = 2 * params * fed / sum(run["following"]) / gemm
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    same = sum(a == b for a, b in zip(run["texts"], plain))
    return [name, len(ms), f"{p50:.0f}", f"{p95:.0f}", f"{np.mean([w.forwards for w in work]):.1f}",
            f"{accepted / len(work):.1f} of {drafted / len(work):.1f}", f"{same}/{len(plain)}", f"{share:.1%}",
            "met" if p95 <= 300 and p50 <= 100 else "not met"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=FINETUNED)
    parser.add_argument("--notes", type=int, default=8)
    parser.add_argument("--words", type=int, default=24, help="words typed per note after its prompt")
    args = parser.parse_args()
    cfg = load_section(SuggestParams, load_params("params.yaml"))
    split = read_jsonl(split_path("test"))
    rows = scored(split)[: args.notes]
    ngram = NGram([f"{note_part(r['prompt'])} {r['target']}" for r in read_jsonl(split_path("train"))],
                  cfg.ngram_order)
    charts = [c.source for c in chart_copies(rows, split)]
    model, tokenizer = load_checkpoint(Path(args.model_dir))
    params, gemm = parameter_count(model), gemm_flops(torch.float32)
    plain = type_notes(model, tokenizer, rows, [([], None)] * len(rows), cfg, args.words)
    runs = {"fp32, plain greedy": plain,
            "fp32, drafts verified": type_notes(model, tokenizer, rows, [(c, ngram) for c in charts], cfg, args.words)}
    variants = {"int8 linear layers (dynamic)":
                torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)}
    if not emulated(torch.bfloat16):
        variants["bf16 weights"] = copy.deepcopy(model).to(torch.bfloat16)
    for name, variant in variants.items():
        runs[f"{name}, drafts verified"] = type_notes(variant, tokenizer, rows, [(c, ngram) for c in charts], cfg,
                                                      args.words)
    tick = time.perf_counter()
    boundaries = sum(len(propose_all(model, tokenizer, r["prompt"], r["target"].split(), cfg.max_words, cfg.budget))
                     for r in rows)
    stage = time.perf_counter() - tick
    first = 1000 * np.array(plain["first"])
    save("suggest", ["after each further word", "n", "p50 ms", "p95 ms", "forwards", "draft tokens kept",
                     "same as fp32 plain", "share of the fp32 limit", "p95 ≤ 300, p50 ≤ 100 ms"],
         [row(name, run, plain["texts"], params, gemm) for name, run in runs.items()],
         [(f"{args.model_dir}: {len(rows)} notes, {params / 1e6:.0f} M parameters, threads {torch.get_num_threads()}, "
           f"at most {cfg.max_words} words / {cfg.budget} tokens a suggestion; forwards and draft tokens are per "
           "suggestion."),
          (f"The first suggestion of a note (its prompt read whole, fp32 plain): p50 {np.percentile(first, 50):.0f} "
           f"ms, p95 {np.percentile(first, 95):.0f} ms."),
          (f"The suggest stage's way, every boundary of a note at once (fp32): {stage / len(rows):.1f} s a note, "
           f"{boundaries / stage:.1f} boundaries/s ({boundaries} boundaries).")],
         {"fp32": gemm}, "Suggestion latency while typing")


if __name__ == "__main__":
    main()
