"""Where a benchmark's numbers go: `benchmarks/results/<name>.json`, committed, which docs/benchmarks.md is made
from (`python -m notelm.readme`, checked by tests/test_readme.py) — so no benchmark figure is typed by hand.

A result file holds the command that made it, the date, the machine (notelm.machine.facts: CPU model and flags
such as avx512_bf16, cores, versions), the same-run GEMM rates it measured against, and its table: `columns` and
`rows` of cells already formatted by the script, plus `notes`, sentences the script made from its numbers
(targets met or not, ratios).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notelm.core.files import write_json
from notelm.machine import facts
from notelm.report.markdown import table

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, columns: list[str], rows: list[list[Any]], notes: list[str] = (), gemm: dict[str, float] | None = None,
         title: str = "", extra: dict[str, Any] | None = None) -> Path:
    """Write benchmarks/results/<name>.json (atomically) and print its table; return the path. `name` is the
    script's, or `<script>.<option>` for a second table an option adds (train.profile: train.py --profile).

    `gemm`: {dtype: FLOP/s} measured in this run (what shares of the limit are taken against). `extra`: more
    fields a docs block reads (e.g. the grid's printed output, benchmarks/cluster.py)."""
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"{name}: every row needs {len(columns)} cells ({columns})")
    command = "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    result = {"name": name, "title": title, "command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
              "machine": facts(), "gemm_gflops": {k: round(v / 1e9, 1) for k, v in (gemm or {}).items()},
              "columns": columns, "rows": [[str(c) for c in r] for r in rows], "notes": list(notes), **(extra or {})}
    path = RESULTS / f"{name}.json"
    write_json(path, result)
    print("\n".join([*table(columns, result["rows"]), *notes]))
    print(f"wrote {path}")
    return path
