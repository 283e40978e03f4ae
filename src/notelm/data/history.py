"""What a nurse writing a note already has: the same patient's earlier notes in the same split.

A prepared example carries its patient (`subject_id`) and when it was written (`charttime`, else
`chartdate`). `earlier` finds, for each example of one split, the same patient's most recent earlier
examples of that split — never a later note, never one of another split (only the rows given are seen).
Notes written at the same time are ordered by their place in the split file (prepare writes each split
sorted by patient, time and file order), so the first of them counts as the earlier one.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any


def written_at(row: dict[str, Any]) -> str:
    """A sortable time of an example: its charttime, else its chartdate at the start of the day."""
    return row.get("charttime") or f"{row.get('chartdate') or ''} 00:00:00"


def earlier(rows: Sequence[dict[str, Any]], k: int = 1) -> list[list[int]]:
    """For each row, the indices of the same patient's `k` most recent earlier rows, most recent first."""
    by_patient: dict[Any, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_patient[row["subject_id"]].append(i)
    out: list[list[int]] = [[] for _ in rows]
    for indices in by_patient.values():
        ordered = sorted(indices, key=lambda i: (written_at(rows[i]), i))
        for position, i in enumerate(ordered):
            out[i] = ordered[max(0, position - k):position][::-1]
    return out


def alternate(rows: Sequence[dict[str, Any]], n: int | None = None) -> list[dict[str, Any]]:
    """The 2nd, 4th, ... row of each patient (in `earlier`'s time order), as data.test_scored: alternate scores
    test notes — so each has an earlier note, a chart — in `rows`' order, the first `n`."""
    before = earlier(rows, k=len(rows))  # per row, all its patient's earlier rows: their number is its rank
    return [r for r, b in zip(rows, before) if len(b) % 2 == 1][:n]


class Recent:
    """`earlier` for a stream of rows that arrive in split order (patient, time, file order), as prepare writes
    them: holds the current patient's last `k` texts, oldest first."""

    def __init__(self, k: int) -> None:
        self.texts: deque[str] = deque(maxlen=k)
        self.subject: Any = object()

    def before(self, subject: Any) -> list[str]:
        """The texts of `subject`'s `k` most recent earlier rows, oldest first (none for a new patient)."""
        if subject != self.subject:
            self.texts.clear()
            self.subject = subject
        return list(self.texts)

    def add(self, text: str) -> None:
        """Record the text of the row just seen (call after `before` for that row)."""
        self.texts.append(text)
