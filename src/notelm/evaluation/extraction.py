"""How well the fact extractor (notelm.evaluation.facts.extract) reads nursing lines: precision and recall per
kind of fact on a hand-labelled set (labels/fact_lines.jsonl).

Each labelled line is MIMIC-style nursing text (CareVue's `CV: HR 70s SR…` or MetaVision's `Assessment: /
Action: / Response:`), written for this set, with every fact a clinician reads in it among the kinds facts.py
defines (vital signs with values, oxygen device, flow and FiO2, drips, medications given with a dose, lines and
findings, present or negated) — including what the extractor is known to miss (facts.MISSES), so recall is not
measured only where the rules already look. A fact is found when extract gives the same kind and value, case and
spaces ignored; precision = correct / found, recall = correct / labelled, per group of kinds and overall.

    notelm facts                     # the table, with the targets
    notelm facts --misses            # ... and every line's missed and extra facts
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from notelm.core.errors import NoteLMError
from notelm.evaluation.facts import Fact, extract, normalise

GROUPS: dict[str, tuple[str, ...]] = {  # the report's rows: kinds of fact as a reader groups them
    "vital signs": ("BP", "SBP", "HR", "RR", "SpO2", "temp"),
    "O2": ("O2 device", "O2 flow", "FiO2"),
    "drips": ("drip",),
    "medications": ("medication",),
    "lines": ("line",),
    "findings": ("finding",),
}
KIND_GROUP = {kind: group for group, kinds in GROUPS.items() for kind in kinds}
OVERALL = "overall"
TARGETS = {"vital signs": 0.90, "O2": 0.90, "drips": 0.90, OVERALL: 0.85}  # issue 33: precision and recall each


@dataclass(frozen=True)
class Labelled:
    """One labelled line: its text and the facts it states."""

    id: int
    style: str
    line: str
    facts: frozenset[Fact]


def _key(fact: Fact) -> Fact:
    kind, value = fact
    return kind, normalise(value)


def read_labelled(path: Path) -> list[Labelled]:
    """The labelled lines of `path` (JSON lines: id, style, line, facts as [kind, value] pairs); a clear error
    naming the file and line for anything else."""
    if not path.is_file():
        raise NoteLMError(f"{path}: labelled fact lines not found; they are committed with the code (git checkout)")
    out = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(text)
            facts = frozenset(_key((kind, value)) for kind, value in row["facts"])
            out.append(Labelled(int(row["id"]), str(row["style"]), str(row["line"]), facts))
        except (ValueError, KeyError, TypeError) as exc:
            raise NoteLMError(f"{path}:{number}: expected a JSON object with id, style, line and facts "
                              f"([kind, value] pairs); {type(exc).__name__}: {exc}. Fix the line.") from exc
        unknown = {k for k, _ in facts} - set(KIND_GROUP)
        if unknown:
            raise NoteLMError(f"{path}:{number}: unknown fact kind(s) {sorted(unknown)}; expected one of "
                              f"{sorted(KIND_GROUP)}")
    return out


def found(line: str) -> frozenset[Fact]:
    """What the extractor finds in `line`, keyed as labels are."""
    return frozenset(_key(f) for f in extract(line))


def measure(labelled: list[Labelled]) -> dict[str, dict[str, float | int]]:
    """{group or 'overall': {labelled, found, correct, precision, recall}} over every line."""
    counts = {g: {"labelled": 0, "found": 0, "correct": 0} for g in [*GROUPS, OVERALL]}
    for item in labelled:
        got = found(item.line)
        for facts, field in ((item.facts, "labelled"), (got, "found"), (got & item.facts, "correct")):
            for kind, _ in facts:
                for group in (KIND_GROUP.get(kind), OVERALL):
                    if group:
                        counts[group][field] += 1
    return {g: {**c, "precision": round(c["correct"] / c["found"], 4) if c["found"] else 0.0,
                "recall": round(c["correct"] / c["labelled"], 4) if c["labelled"] else 0.0}
            for g, c in counts.items()}


def shortfalls(measured: dict[str, dict[str, float | int]]) -> list[str]:
    """One sentence per target missed (TARGETS), naming the group, the measure and both numbers."""
    return [f"{group} {what} {measured[group][what]:.2f} < {target:.2f}" for group, target in TARGETS.items()
            for what in ("precision", "recall") if measured[group][what] < target]


def misses(labelled: list[Labelled]) -> list[tuple[Labelled, frozenset[Fact], frozenset[Fact]]]:
    """(line, labelled facts not found, facts found but not labelled) for every line the extractor got wrong."""
    out = []
    for item in labelled:
        got = found(item.line)
        if got != item.facts:
            out.append((item, item.facts - got, got - item.facts))
    return out
