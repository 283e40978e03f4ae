"""Markdown as every NoteLM table writes it: one way to show a number or a missing value (`–`), an interval,
text safe inside a table cell, and a GitHub table.

Pure string formatting, no project imports. Used by the report (report/sections.py), `notelm compare`
(compare.py), the study's tables (study.py), the memory plan (training/plan.py), the arena leaderboard (arena.py) and
the README's generated blocks (readme.py), so that a missing value or a number reads the same in all of them.
"""

from __future__ import annotations

import re
from typing import Any

MISSING = "–"  # a missing value, in every table


def fmt(value: Any, digits: int | None = 4) -> str:
    """A number with `digits` decimals (ints as they are; any value as `str` gives it when `digits` is None);
    '–' for a missing value."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(block: dict[str, Any] | None, key: str, signed: bool = False, digits: int = 4) -> str:
    """`0.1234 [0.1000, 0.1400]` from a metrics block (`digits` decimals); '–' if the metric is absent."""
    if not block or key not in block:
        return MISSING
    sign = "+" if signed else ""
    point = f"{block[key]:{sign}.{digits}f}"
    low, high = block.get(f"{key}_ci_low"), block.get(f"{key}_ci_high")
    if low is None or high is None:
        return point
    return f"{point} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_text(text: str) -> str:
    """`text` on one line with Markdown specials escaped, safe inside a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with '…' when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut + " …"


def tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text`, starting at a word boundary, with '…' when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "… " + (cut.split(" ", 1)[1] if " " in cut else cut)


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A GitHub Markdown table as lines; `align` has a letter per column, `l` (the default for a column not
    given) or `r` (right-aligned, for numbers)."""
    rules = ["---:" if a == "r" else "---" for a in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines
