"""How long the default pipeline takes on this machine: `dvc repro` run and timed stage by stage; writes
benchmarks/results/pipeline.json (the stage times docs/benchmarks.md and the README's set-up section show).

    python benchmarks/pipeline.py            # dvc repro: the stale stages run, the others are skipped
    python benchmarks/pipeline.py --force    # every stage runs (dvc repro --force)

A stage's time runs from DVC's "Running stage" line to the next stage's line (or the end), so it includes DVC's
own hashing and caching of the stage's outputs. Target: the default `make repro` ≤ 10 minutes with the install
on a 2-core machine with AVX-512 BF16 (the install is not timed here).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from results import save  # benchmarks/, on the path when run as a script

RUNNING = re.compile(r"Running stage '([\w@.-]+)'")
SKIPPED = re.compile(r"Stage '([\w@.-]+)' didn't change, skipping")
RESUMED = "resuming this very run"  # the train stage's log line when it finds its own checkpoint (train.resume: auto)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="run every stage (dvc repro --force)")
    args = parser.parse_args()
    events: list[tuple[str, str, float]] = []  # (stage, ran | skipped, when)
    resumed = False
    start = time.perf_counter()
    with subprocess.Popen(["dvc", "repro", *(["--force"] if args.force else [])], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            resumed = resumed or RESUMED in line
            for pattern, what in ((RUNNING, "ran"), (SKIPPED, "skipped")):
                if match := pattern.search(line):
                    events.append((match.group(1), what, time.perf_counter()))
    end = time.perf_counter()
    if proc.returncode:
        print(f"dvc repro failed (exit {proc.returncode}): no result written", file=sys.stderr)
        return proc.returncode
    ends = [t for _, _, t in events[1:]] + [end]
    rows = [[stage, f"{stop - when:.0f}" if what == "ran" else "–", what]
            for (stage, what, when), stop in zip(events, ends)]
    ran = sum(1 for _, what, _ in events if what == "ran")
    total = end - start
    save("pipeline", ["stage", "seconds", "ran or skipped"], rows,
         [f"`dvc repro{' --force' if args.force else ''}`: {ran} of {len(events)} stages ran, {total / 60:.1f} min "
          f"in all ({total:.0f} s); the install (`make setup`) is not counted.",
          *(["train resumed a checkpoint of this very run (models/checkpoints, `train.resume: auto`), so its time "
             "is not a training run's: remove models/checkpoints first to time one."] if resumed else [])],
         title="The default pipeline, stage by stage")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
