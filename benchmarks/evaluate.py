"""Throughput of the evaluate stage's scorers: ROUGE and BERTScore on synthetic pairs.

    PYTHONPATH=src python benchmarks/evaluate.py [--pairs 1000] [--words 60]

Builds `--pairs` seeded synthetic nursing-note pairs of about `--words` words each
(prediction and reference share some sentences, as real continuations do), scores
them with `notelm.evaluation.rouge.rouge_scores` and `notelm.evaluation.bertscore.bertscore_scores` using the default
`evaluate` params (bundled all-MiniLM-L6-v2, layer 6), once per `evaluate.bertscore_dtype`
(float32, the default, and bfloat16), and writes pairs/s, wall time and how far bf16 moves F1 to benchmarks/results/evaluate.json.
The machine is shared: run it when it is otherwise idle. Target (issue 5): ROUGE + BERTScore on 1,000 pairs in <= 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
from results import save  # benchmarks/, on the path when run as a script

from notelm.config.evaluate import EvaluateParams
from notelm.evaluation.bertscore import bertscore_scores, load_encoder
from notelm.evaluation.rouge import rouge_scores

SENTENCES = [
    "Pt alert and oriented x3, follows commands, MAE.",
    "HR 80s NSR, no ectopy noted, BP 110s/60s.",
    "Lungs clear bilaterally, diminished at bases, on 2L NC with sats 95-98%.",
    "Abd soft, nontender, +BS, tolerating clear liquids.",
    "Foley draining clear yellow urine, 40-60cc/hr.",
    "Heparin gtt at 900 units/hr, PTT pending at 1800.",
    "Skin intact, turned q2h, heels elevated.",
    "Pain 3/10 at incision, morphine 2mg IV given with relief.",
    "Wife at bedside, updated on plan of care by team.",
    "Plan: continue to monitor hemodynamics, wean O2 as tolerated.",
    "Afebrile, WBC trending down, cont on vanc/zosyn.",
    "K 3.6 repleted with 40 meq KCl PO, recheck lytes in am.",
    "Pt slept intermittently overnight, calm and cooperative.",
    "Lasix 20mg IV given with good response, -1L so far.",
    "Tele: NSR with occasional PVCs, MD aware.",
    "Access: R IJ TLC, site clean and dry, L PIV 20g.",
]


def synthetic_pairs(n: int, words: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n (prediction, reference) pairs of ~`words` words drawn from SENTENCES, seeded."""
    rng = np.random.default_rng(seed)

    def text() -> list[str]:
        out, count = [], 0
        while count < words:
            s = SENTENCES[rng.integers(len(SENTENCES))]
            out.append(s)
            count += len(s.split())
        return out

    preds, refs = [], []
    for _ in range(n):
        ref = text()
        pred = [s if rng.random() < 0.4 else SENTENCES[rng.integers(len(SENTENCES))] for s in ref]
        preds.append(" ".join(pred))
        refs.append(" ".join(ref))
    return preds, refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--words", type=int, default=60)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], help="evaluate.bertscore_dtype values to time")
    args = ap.parse_args()

    import torch

    load0 = f"{os.getloadavg()[0]:.2f}"
    preds, refs = synthetic_pairs(args.pairs, args.words)
    mean_words = np.mean([len(t.split()) for t in preds + refs])
    cfg = EvaluateParams()
    steps: dict[str, tuple[float, float]] = {}  # step -> (wall s, process CPU s)

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        steps[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result

    wall0 = time.perf_counter()
    timed("rouge", lambda: rouge_scores(preds, refs))
    timed("load", lambda: load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed))
    f1 = {}
    for dtype in args.dtypes:
        run_cfg = dataclasses.replace(cfg, bertscore_dtype=dtype)
        f1[dtype] = timed(dtype, lambda: bertscore_scores(preds, refs, run_cfg))["bertscore_f1"]
    wall = time.perf_counter() - wall0

    rows = []

    def line(name, wall_s, cpu_s, per_pair=True, note="–"):
        rows.append([name, f"{wall_s:.2f}", f"{cpu_s:.2f}", f"{args.pairs / wall_s:.1f}" if per_pair else "–", note])

    line("ROUGE-1/2/L/Lsum", *steps["rouge"])
    line("BERTScore encoder load (once)", *steps["load"], per_pair=False)
    for dtype in args.dtypes:
        line(f"BERTScore {dtype}", *steps[dtype])
    for dtype in args.dtypes:
        both = [sum(steps[k][j] for k in ("rouge", "load", dtype)) for j in (0, 1)]
        line(f"ROUGE + load + BERTScore {dtype}", *both, note=f"≤ 60 s: {'met' if both[0] <= 60 else 'not met'}")
    notes = [f"{args.pairs} pairs, {mean_words:.1f} words a text on average; encoder {cfg.bertscore_model} layer "
             f"{cfg.bertscore_layer}; {torch.get_num_threads()} threads; load average before/after {load0} / "
             f"{os.getloadavg()[0]:.2f}; total wall {wall:.2f} s."]
    if "float32" in f1 and "bfloat16" in f1:
        d = f1["bfloat16"] - f1["float32"]
        notes.append(f"bfloat16 against float32 F1: mean shift {d.mean():+.1e}, largest |difference| {np.abs(d).max():.1e}.")
    save("evaluate", ["step", "wall s", "CPU s", "pairs/s", "target"], rows, notes, title="Scoring continuations")

if __name__ == "__main__":
    main()
