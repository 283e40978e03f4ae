"""The arena's ratings file: one JSON line per rated round, appended safely, read back, summarised per model.

A record holds the prompt, both models' outputs and timings, the GRACE scores (Generalization,
Relevance, Artistry, Efficiency; 1-5) of each side and the vote. The file may quote patient text, so
it lives under the git-ignored ratings/ (artifacts.RATINGS).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notelm.errors import NoteLMError

log = logging.getLogger(__name__)

GRACE = ("generalization", "relevance", "artistry", "efficiency")
VOTES = ("A", "B", "tie")


class Refused(NoteLMError):
    """A request the app declines with a message for the user (empty or over-long prompt, bad settings or scores)."""


_RATINGS_LOCK = threading.Lock()


def append_rating(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one complete JSON line to `path` (created if absent), flushed and fsynced.

    Writers in this process are serialised by a lock, writers in other processes by flock. If an
    earlier crash left a partial last line, the new line starts on a line of its own.
    """
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _RATINGS_LOCK, open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_ratings(path: Path) -> list[dict[str, Any]]:
    """Every complete rating in `path` (none when absent); a torn or corrupt line is skipped with a warning."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            log.warning("%s:%d: not a complete JSON object; skipped", path, number)
    return rows


def rating_record(round_: dict[str, Any], scores_a: list, scores_b: list, vote: str | None) -> dict[str, Any]:
    """The line saved for one rated arena round; Refused unless all eight scores are 1-5 and the vote valid."""
    scores = {}
    for side, values in (("a", scores_a), ("b", scores_b)):
        if len(values) != len(GRACE) or any(v not in (1, 2, 3, 4, 5) for v in values):
            raise Refused(f"score every GRACE dimension of output {side.upper()} from 1 to 5")
        scores[side] = {dim: int(v) for dim, v in zip(GRACE, values)}
    if vote not in (None, "", *VOTES):
        raise Refused(f"vote must be one of {', '.join(VOTES)} (or none), got {vote!r}")
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "prompt": round_["prompt"],
              "decoding": round_["decoding"], "vote": vote or None}
    for side in ("a", "b"):
        run = round_[side]
        record[f"model_{side}"] = run["model"]
        record[f"output_{side}"] = run["completion"]
        record[f"scores_{side}"] = scores[side]
        record[f"seconds_{side}"] = run.get("seconds")
        record[f"tokens_per_s_{side}"] = run.get("tokens_per_s")
    return record


def human_summary(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: number of rated outputs, mean score per GRACE dimension, and votes won / lost / tied."""
    by_model: dict[str, dict[str, Any]] = {}
    for r in ratings:
        for side in ("a", "b"):
            model, scores = r.get(f"model_{side}"), r.get(f"scores_{side}")
            if not model or not isinstance(scores, dict):
                continue
            row = by_model.setdefault(model, {"model": model, "ratings": 0, "wins": 0, "losses": 0, "ties": 0,
                                              **{d: 0.0 for d in GRACE}})
            row["ratings"] += 1
            for d in GRACE:
                row[d] += float(scores.get(d, 0))
            vote = r.get("vote")
            if vote == "tie":
                row["ties"] += 1
            elif vote in ("A", "B"):
                row["wins" if vote.lower() == side else "losses"] += 1
    for row in by_model.values():
        for d in GRACE:
            row[d] = round(row[d] / row["ratings"], 2)
    return sorted(by_model.values(), key=lambda row: row["model"])
