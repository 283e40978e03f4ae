"""Progress of the loops that run for hours at MIMIC scale (generation, likelihood, ROUGE, BERTScore, the audit,
retrieval): a tqdm bar on stderr with the rate and the time left.

Shown when stderr is a terminal, or when NOTELM_PROGRESS=1 asks for it (a log file of a long `dvc repro`);
NOTELM_PROGRESS=0 hides it. Otherwise silent, so test output and captured logs stay clean; the stages'
own log lines (one per stage and interval) are unaffected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool:
    """Whether progress bars are shown (module docstring)."""
    asked = os.environ.get("NOTELM_PROGRESS", "").strip().lower()
    if asked in ("1", "true", "yes", "on"):
        return True
    if asked in ("0", "false", "no", "off"):
        return False
    return sys.stderr.isatty()


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """`items`, with a bar named `desc` counting `unit`s when progress is enabled."""
    if not enabled():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
