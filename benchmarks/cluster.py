"""The grid on a real Slurm, as the test runs it: `tests/test_cluster.py` (a one-node Slurm on this machine, a
bare git remote, a local-directory DVC remote, three points of the tiny pipeline: two that finish and one made
to fail) run with NOTELM_GRID_OUTPUT set, so that its output is kept; writes benchmarks/results/cluster.json,
which docs/cluster.md (what the grid printed) and docs/benchmarks.md (each job's run time) are made from.

    python benchmarks/cluster.py             # needs root for apt-get the first time (slurm-wlm, munge)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from results import save  # benchmarks/, on the path when run as a script

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/test_cluster.py::test_a_grid_runs_as_slurm_array_tasks_and_comes_back_through_dvc"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid.json"
        env = {**os.environ, "NOTELM_GRID_OUTPUT": str(out), "NOTELM_REQUIRE_SLURM": "1"}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=REPO, env=env)
        if proc.returncode != 0 or not out.is_file():
            print("the grid test failed; nothing written", file=sys.stderr)
            return 1
        grid = json.loads(out.read_text())
    states = [state for name, _, state, _ in grid["jobs"] if name != "shared"]
    notes = [f"From `notelm grid --slurm` until `notelm grid status` showed nothing pending or running: "
             f"{grid['seconds']} s for {len(states)} points ({states.count('done')} done, {states.count('failed')} "
             f"failed) on a one-node Slurm with this machine's {os.cpu_count()} CPUs, one a task; the shared job "
             "ran first, the points after it."]
    save("cluster", ["job", "Slurm id", "state", "run time (s)"], grid["jobs"], notes,
         title="The grid on a one-node Slurm", extra={k: grid[k] for k in ("submitted", "status", "show", "exp_show")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
