"""Benchmark the train stage's token blocks at scale: peak memory of the streamed, memory-mapped dataset vs
tokenising the whole split into Python lists (what the stage did before), on the same synthetic notes.

Writes a train.jsonl of N synthetic nursing notes (benchmarks/prepare.py's generator) to a temporary
directory, then builds the blocks in a fresh process per method and size, and writes

    method  notes  blocks  seconds  peak RSS MB  (RSS above the process at start)

to benchmarks/results/train_data.json.

    python benchmarks/train_data.py                          # 20,000 and 100,000 notes, SmolLM2's tokenizer
    python benchmarks/train_data.py --notes 20000 100000 400000 --tokenizer models/base/smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import _note  # noqa: E402 - the benchmarks' shared note generator


def write_split(path: Path, n: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            words = _note(rng, i).split()
            half = len(words) // 2
            fh.write(json.dumps({"prompt": " ".join(words[:half]), "target": " ".join(words[half:])}) + "\n")


def _lists(path: Path, tokenizer, length: int) -> int:
    """The previous way: every text tokenised at once into Python lists, flattened, cut, labels copied."""
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    texts = [f"{r['prompt']} {r['target']}".strip() + tokenizer.eos_token for r in rows]
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    flat = [t for seq in ids for t in seq]
    blocks = [flat[i * length:(i + 1) * length] for i in range(max(1, len(flat) // length))]
    from datasets import Dataset

    data = Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks],
                              "labels": [list(b) for b in blocks]})
    return len(data)


def _run(method: str, path: str, tokenizer_dir: str, length: int, queue) -> None:
    import os

    os.environ["HF_DATASETS_CACHE"] = str(Path(path).parent / f"cache-{method}")
    from transformers import AutoTokenizer

    from notelm.training.blocks import build_dataset

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tick = time.perf_counter()
    n = len(build_dataset(Path(path), tokenizer, length, True)) if method == "streamed" else \
        _lists(Path(path), tokenizer, length)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((n, time.perf_counter() - tick, peak, peak - start))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--tokenizer", default="models/base/smollm2-135m")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    # benchmarks/results.py, imported here, not at the top: each method's process imports this file, its RSS measured
    from results import save

    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.notes:
            path = Path(tmp) / f"train-{n}.jsonl"
            write_split(path, n)
            for method in ("lists", "streamed"):
                queue = ctx.Queue()
                proc = ctx.Process(target=_run, args=(method, str(path), args.tokenizer, args.max_length, queue))
                proc.start()
                blocks, seconds, peak, above = queue.get()
                proc.join()
                rows.append([method, n, blocks, f"{seconds:.1f}", f"{peak:.0f}", f"{above:.0f}"])
                print(f"{method}, {n} notes: {seconds:.1f} s", flush=True)  # progress; the table comes at the end
    save("train_data", ["method", "notes", "blocks", "seconds", "peak RSS MB", "above start MB"], rows,
         [f"Tokenizer {args.tokenizer}, blocks of {args.max_length} tokens; each method and size in a fresh process."],
         title="Training blocks: streamed vs Python lists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
