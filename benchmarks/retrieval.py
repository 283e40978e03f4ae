"""Benchmark the retrieval baseline: evaluate's GEMM + sparse search vs the dense-block argmax it replaced.

Both compute the same thing — for each test prompt, the train prompt nearest by TF-IDF cosine (first index on
ties) — on the same synthetic nursing-note prompts (benchmarks/prepare.py's generator, first half of each note).
Each runs in its own process so its peak RSS is its own; the run checks they agree and writes

    method  train  test  seconds  test prompts/s  peak RSS MB      (and the speed-up)

to benchmarks/results/retrieval.json.

    python benchmarks/retrieval.py                           # 100,000 train × 5,000 test prompts
    python benchmarks/retrieval.py --train 800000 --test 100000 --methods "gemm + sparse"   # MIMIC-III's size
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import _note  # noqa: E402 - the benchmarks' shared note generator


def prompts(n: int, offset: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed + offset)
    out = []
    for i in range(n):
        words = _note(rng, offset + i).split()
        out.append(" ".join(words[: len(words) // 2]))
    return out


def dense_blocks(train: list[str], test: list[str], chunk: int = 256) -> np.ndarray:
    """The previous implementation: a dense test-chunk × train similarity block per 256 test prompts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True)
    tr = vec.fit_transform(train)
    te = vec.transform(test)
    best = np.empty(len(test), dtype=int)
    for s in range(0, len(test), chunk):
        best[s:s + chunk] = (te[s:s + chunk] @ tr.T).toarray().argmax(axis=1)
    return best


def _run(method: str, n_train: int, n_test: int, queue) -> None:
    train, test = prompts(n_train, 0), prompts(n_test, 10**8)
    tick = time.perf_counter()
    if method == NEW:
        from notelm.evaluation.retrieval import retrieve_nearest

        best = retrieve_nearest(train, test)
    else:
        best = dense_blocks(train, test)
    seconds = time.perf_counter() - tick
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, best))


NEW, OLD = "gemm + sparse", "dense blocks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--test", type=int, default=5_000)
    parser.add_argument("--methods", nargs="+", choices=[OLD, NEW], default=[OLD, NEW],
                        help="the dense blocks take hours at MIMIC's size: leave them out there")
    args = parser.parse_args()
    # benchmarks/results.py, imported here, not at the top: each method's process imports this file, its RSS measured
    from results import save

    ctx = mp.get_context("spawn")
    results = {}
    for method in args.methods:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(method, args.train, args.test, queue))
        proc.start()
        results[method] = queue.get()
        proc.join()
    rows = [[method, args.train, args.test, f"{seconds:.1f}", f"{args.test / seconds:.0f}", f"{rss:.0f}"]
            for method, (seconds, rss, _) in results.items()]
    notes = []
    if len(results) >= 2:
        (old, _, a), (new, _, b) = results[OLD], results[NEW]
        notes.append(f"Speed-up {old / new:.2f}×; same nearest train prompt for {np.mean(a == b):.2%} of test prompts "
                     "(TF-IDF fit included in both).")
    save("retrieval", ["method", "train", "test", "seconds", "test prompts/s", "peak RSS MB"], rows, notes,
         title="Retrieval baseline: nearest train prompt by TF-IDF")
    return 0 if len(results) < 2 or (a == b).all() else 1


if __name__ == "__main__":
    sys.exit(main())
