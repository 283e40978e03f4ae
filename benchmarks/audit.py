"""Time the leakage audit on a synthetic corpus and extrapolate to MIMIC-III scale.

    PYTHONPATH=src python benchmarks/audit.py                       # ~20k train / 2k test, clean split
    PYTHONPATH=src python benchmarks/audit.py --split note          # the leaky note-level split
    PYTHONPATH=src python benchmarks/audit.py --test 100000 --val 100000 --train 20000   # MIMIC-sized index

Builds prepared-style examples from `notelm.data.synthetic` nursing notes in memory (prompt = first half
of the words), splits them by subject (clean) or by note (leaky), and times `notelm.privacy.audit.audit`: indexing
test and val, then scanning train. Scan time grows linearly with train notes, so it writes the
estimate for 800k train notes against the held-out splits actually indexed, with notes/s and peak RSS
(which includes the in-memory corpus; `notelm audit` streams train from disk instead), to
benchmarks/results/audit.json.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from results import save  # benchmarks/, on the path when run as a script

from notelm.config.audit import AuditParams
from notelm.config.synthetic import SyntheticParams
from notelm.data import synthetic
from notelm.privacy import audit

MIMIC_TRAIN = 800_000


def examples(n: int, seed: int) -> list[dict]:
    """About `n` prepared-style examples from synthetic nursing notes (~10 notes per patient)."""
    cfg = SyntheticParams(seed=seed, patients=max(1, n // 9), error_rows=0, blank_rows=0)
    out = []
    for row in synthetic.generate_rows(cfg):
        if row["CATEGORY"] in synthetic.NURSING_CATEGORIES:
            words = row["TEXT"].split()
            half = len(words) // 2
            out.append({"note_id": str(row["ROW_ID"]), "subject_id": row["SUBJECT_ID"], "hadm_id": row["HADM_ID"],
                        "prompt": " ".join(words[:half]), "target": " ".join(words[half:])})
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000, help="train notes (about)")
    parser.add_argument("--test", type=int, default=2_000, help="test notes (about)")
    parser.add_argument("--val", type=int, default=0, help="val notes (about)")
    parser.add_argument("--split", choices=["subject", "note"], default="subject")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    rows = examples(args.train + args.test + args.val, args.seed)
    rng = random.Random(args.seed)
    if args.split == "subject":  # whole patients, in a random order
        order = sorted({r["subject_id"] for r in rows})
        rng.shuffle(order)
        rank = {s: i for i, s in enumerate(order)}
        rows.sort(key=lambda r: rank[r["subject_id"]])
    else:
        rng.shuffle(rows)
    total = args.train + args.test + args.val
    cut = [len(rows) * args.test // total, len(rows) * (args.test + args.val) // total]
    for i in range(2):
        while args.split == "subject" and 0 < cut[i] < len(rows) and \
                rows[cut[i]]["subject_id"] == rows[cut[i] - 1]["subject_id"]:
            cut[i] += 1  # keep each patient in one split
    a, b = cut
    test, val, train = rows[:a], rows[a:b], rows[b:]
    corpus = (f"corpus: {len(train)} train / {len(val)} val / {len(test)} test notes ({args.split} split), "
              f"built in {time.perf_counter() - t0:.1f}s, RSS {rss_mb():,.0f} MB")
    print(corpus)

    started: list[float] = []

    def stamped(rows):  # audit reads train only once test and val are indexed
        started.append(time.perf_counter())
        yield from rows

    t0 = time.perf_counter()
    metrics = audit.audit(stamped(train), iter(test), AuditParams(), val_rows=iter(val) if val else None)
    end = time.perf_counter()
    index, scan = started[0] - t0, end - started[0]
    estimate = (index + scan * MIMIC_TRAIN / max(len(train), 1)) / 60
    save("audit", ["split", "train notes", "val notes", "test notes", "wall s", "indexing s", "scanning s",
                   "train notes/s", "peak RSS MB", f"estimate for {MIMIC_TRAIN:,} train notes, min"],
         [[args.split, len(train), len(val), len(test), f"{end - t0:.1f}", f"{index:.1f}", f"{scan:.1f}",
           f"{len(train) / scan:,.0f}", f"{rss_mb():,.0f}", f"{estimate:.1f}"]],
         [(f"C{corpus[1:]}; the estimate scales the scan linearly against the {len(test) + len(val)} held-out "
           "notes indexed."),
          "Audit metrics: " + ", ".join(f"{k} {v}" for k, v in metrics.items() if not isinstance(v, dict)) + "."],
         title="Leakage audit at scale")


if __name__ == "__main__":
    main()
