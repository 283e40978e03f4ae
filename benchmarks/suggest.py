"""Suggestion latency of the default model on this machine: the page's suggestions while typing, and the suggest
stage's every-boundary-at-once, each with its share of the compute limit.

The first suggestion of a note reads the whole typed prompt; each following one comes after one more word is
typed, the cached text re-used (notelm.generation.suggest.Suggester), and proposes the greedy next words (at most
`suggest.max_words`, at most `suggest.budget` tokens). The share of the limit is the work done — 2·N FLOPs per
token read or decoded, N the parameters — over the seconds taken, against a square fp32 GEMM's FLOP/s measured
in the same run. A suggestion decoded one token at a time at batch 1 reads every weight once a token, so it is
bound by memory, not compute: its share of the GEMM limit is low by nature. Target (issue 22): p95 ≤ 300 ms for a
5-word suggestion after the first.

    python benchmarks/suggest.py                               # 8 test notes, 24 words typed each
    python benchmarks/suggest.py --notes 16 --model-dir models/base/smollm2-135m

Needs `make repro` (or `dvc repro train prepare`) first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from limits import gemm_flops, parameter_count  # benchmarks/, on the path when run as a script
from results import save

from notelm.config.names import scored
from notelm.config.suggest import SuggestParams
from notelm.core.files import read_jsonl
from notelm.core.loader import load_params, load_section
from notelm.core.paths import FINETUNED, split_path
from notelm.generation.suggest import Suggester, propose_all
from notelm.training.weights import load_checkpoint


def row(name: str, seconds: list[float], work: list[int], params: int, gemm: float, target: str) -> list[str]:
    ms = 1000 * np.array(seconds)
    share = 2 * params * sum(work) / sum(seconds) / gemm
    return [name, len(seconds), f"{np.percentile(ms, 50):.0f}", f"{np.percentile(ms, 95):.0f}", f"{share:.1%}", target]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=FINETUNED)
    parser.add_argument("--notes", type=int, default=8)
    parser.add_argument("--words", type=int, default=24, help="words typed per note after its prompt")
    args = parser.parse_args()
    cfg = load_section(SuggestParams, load_params("params.yaml"))
    rows = scored(read_jsonl(split_path("test")))[: args.notes]
    model, tokenizer = load_checkpoint(Path(args.model_dir))
    params, gemm = parameter_count(model), gemm_flops(torch.float32)
    first, following, first_work, following_work = [], [], [], []
    for r in rows:
        typist, text = Suggester(model, tokenizer, cfg.max_words, cfg.budget), r["prompt"]
        for i, word in enumerate([None, *r["target"].split()[: args.words]]):
            text = text if word is None else f"{text} {word}"
            tick = time.perf_counter()
            typist.propose_text(text)
            seconds = time.perf_counter() - tick
            (first if i == 0 else following).append(seconds)
            (first_work if i == 0 else following_work).append(sum(typist.work))
    tick = time.perf_counter()
    boundaries = sum(len(propose_all(model, tokenizer, r["prompt"], r["target"].split(), cfg.max_words, cfg.budget))
                     for r in rows)
    stage = time.perf_counter() - tick
    p95 = np.percentile(1000 * np.array(following), 95)
    save("suggest", ["suggestion", "n", "p50 ms", "p95 ms", "share of the fp32 limit", "target"], [
        row("first of a note (the prompt read whole)", first, first_work, params, gemm, "–"),
        row("after each further word (cache re-used)", following, following_work, params, gemm,
            f"p95 ≤ 300 ms: {'met' if p95 <= 300 else 'not met'}")],
        [f"{args.model_dir}: {len(rows)} notes, {params / 1e6:.0f} M parameters, threads {torch.get_num_threads()}, "
         f"at most {cfg.max_words} words / {cfg.budget} tokens a suggestion.",
         f"The suggest stage's way, every boundary of a note at once: {stage / len(rows):.1f} s a note, "
         f"{boundaries / stage:.1f} boundaries/s ({boundaries} boundaries)."],
        {"fp32": gemm}, "Suggestion latency while typing")


if __name__ == "__main__":
    main()
