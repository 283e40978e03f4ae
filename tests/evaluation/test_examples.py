"""The examples evaluate scores: the test notes the generations cover, cross-checked against the test split,
with every system's continuation cut at the cap; stale, missing or malformed inputs are named."""

from __future__ import annotations

import json

import pytest

from notelm.core.errors import NoteLMError
from notelm.core.files import write_jsonl
from notelm.evaluation.examples import Examples, read_examples
from tests.stages.test_evaluate import TEST_NOTES, Case, _write_fixture


def read(case: Case) -> Examples:
    """read_examples as the evaluate stage calls it."""
    return read_examples(case.params, case.generations(), case.root / "data" / "prepared", case.cap)


def test_read_examples_in_test_split_order_cut_at_the_cap(tmp_path):
    ex = read(_write_fixture(tmp_path).replace(cap=5))
    assert [r["note_id"] for r in ex.rows] == [nid for nid, _, _ in TEST_NOTES]
    assert ex.refs == [t for _, _, t in TEST_NOTES] and ex.models == ["pretrained", "finetuned"]
    assert list(ex.systems) == ["pretrained", "finetuned", "chance", "copy_forward", "aligned_copy", "prompt_tail",
                                "retrieval"]
    assert all(len(t.split()) <= 5 for texts in ex.systems.values() for t in texts)
    assert ex.raw_words["pretrained"] == [15] * 6 and ex.fallbacks == 3
    assert ex.generations["finetuned"][0]["completion"] == TEST_NOTES[0][2]  # the rows as written, uncut


def test_a_chart_holds_the_prompt_and_only_the_earlier_notes_of_the_patient(tmp_path):
    ex = read(_write_fixture(tmp_path))
    first, second = ex.charts[0], ex.charts[1]  # t1 then t2 of patient 1
    assert first == TEST_NOTES[0][1]  # the first note: its prompt alone
    assert second.startswith(TEST_NOTES[1][1]) and TEST_NOTES[0][1] in second and TEST_NOTES[0][2] in second
    assert TEST_NOTES[1][2] not in second and TEST_NOTES[2][1] not in second  # never its own rest or another patient


# ---------------------------------------------------------------- errors


def test_missing_generations_file_is_named(tmp_path):
    case = _write_fixture(tmp_path)
    (tmp_path / "generations" / "finetuned.jsonl").unlink()
    with pytest.raises(NoteLMError, match=r"generations/finetuned\.jsonl: file not found"):
        read(case)
    with pytest.raises(NoteLMError, match=r"generations/other\.jsonl: file not found"):
        read(case.replace(variants=("pretrained", "other")))
    (tmp_path / "data" / "prepared" / "test.jsonl").unlink()
    with pytest.raises(NoteLMError, match=r"prepared/test\.jsonl: file not found"):
        read(case)


def test_stale_or_mismatched_generations(tmp_path):
    case = _write_fixture(tmp_path)
    path = tmp_path / "generations" / "pretrained.jsonl"
    gens = [json.loads(line) for line in open(path)]
    write_jsonl(path, gens[:-1])
    with pytest.raises(NoteLMError, match="cover different test notes"):
        read(case)
    gens[0]["reference"] = "something else"
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"row 1 \(note_id t1\): reference differs"):
        read(case)
    del gens[0]["completion"]
    write_jsonl(path, gens)
    with pytest.raises(NoteLMError, match=r"pretrained\.jsonl: row 1: missing .*completion"):
        read(case)
    path.write_text("{not json\n")
    with pytest.raises(NoteLMError, match=r"pretrained\.jsonl:1: not valid JSON"):
        read(case)

