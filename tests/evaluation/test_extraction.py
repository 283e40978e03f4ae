"""The fact extractor measured on the hand-labelled nursing lines (labels/), and the measuring itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notelm.core.errors import NoteLMError
from notelm.core.paths import FACT_LINES
from notelm.evaluation.extraction import (
    GROUPS,
    OVERALL,
    TARGETS,
    Labelled,
    measure,
    misses,
    read_labelled,
    shortfalls,
)

ROOT = Path(__file__).resolve().parents[2]


def labelled(name: str) -> list[Labelled]:
    return read_labelled(ROOT / FACT_LINES[name])


def test_the_labelled_sets_hold_150_lines_of_both_styles_every_kind_and_no_line_twice():
    development, held_out = labelled("development"), labelled("held_out")
    assert len(development) >= 150 and len(held_out) >= 50
    assert {x.style for x in development} == {x.style for x in held_out} == {"CareVue", "MetaVision"}
    kinds = {k for x in development for k, _ in x.facts}
    assert all(any(k in kinds for k in group) for group in GROUPS.values())
    assert not {x.line for x in development} & {x.line for x in held_out}
    assert len({x.line for x in development}) == len(development)


def test_the_extractor_meets_the_targets_on_the_development_lines():
    measured = measure(labelled("development"))
    assert shortfalls(measured) == [], [(m[0].line, m[1], m[2]) for m in misses(labelled("development"))]


def test_the_held_out_lines_are_measured_with_every_group_reported():
    measured = measure(labelled("held_out"))
    assert set(measured) == {*GROUPS, OVERALL}
    assert measured[OVERALL]["labelled"] == sum(len(x.facts) for x in labelled("held_out"))


def test_precision_and_recall_count_facts_by_kind():
    lines = [Labelled(1, "CareVue", "HR 88, BP 120/80, foley in place.", frozenset({
        ("HR", "88"), ("BP", "120/80"), ("line", "foley"), ("finding", "edema")})),
        Labelled(2, "CareVue", "RR 18, RR 20.", frozenset({("RR", "18")}))]
    measured = measure(lines)
    assert measured["vital signs"] == {"labelled": 3, "found": 4, "correct": 3, "precision": 0.75, "recall": 1.0}
    assert measured["findings"]["recall"] == 0.0 and measured["findings"]["found"] == 0
    assert measured[OVERALL]["correct"] == 4 and measured[OVERALL]["labelled"] == 5
    assert shortfalls(measured)[0].startswith("vital signs precision 0.75 < 0.90")
    assert [m[0].id for m in misses(lines)] == [1, 2]


def test_values_are_compared_ignoring_case_and_spaces():
    lines = [Labelled(1, "CareVue", "Foley d/c'd, HR 70 - 89.", frozenset({("line", "nofoley"), ("HR", "70-89")}))]
    assert measure(lines)[OVERALL]["correct"] == 2


@pytest.mark.parametrize("text, says", [
    ('{"id": 1, "style": "CareVue", "line": "HR 88"}', "facts"),
    ("not json", "expected a JSON object"),
    ('{"id": 1, "style": "CareVue", "line": "HR 88", "facts": [["pulse", "88"]]}', "unknown fact kind"),
])
def test_a_bad_labelled_line_names_the_file_and_line(tmp_path, text, says):
    path = tmp_path / "lines.jsonl"
    path.write_text(json.dumps({"id": 0, "style": "CareVue", "line": "x", "facts": []}) + "\n" + text + "\n")
    with pytest.raises(NoteLMError, match=f"lines.jsonl:2: .*{says}"):
        read_labelled(path)


def test_a_missing_labelled_file_says_so(tmp_path):
    with pytest.raises(NoteLMError, match="not found"):
        read_labelled(tmp_path / "absent.jsonl")


def test_the_targets_cover_the_issue_groups():
    assert TARGETS == {"vital signs": 0.90, "O2": 0.90, "drips": 0.90, OVERALL: 0.85}
