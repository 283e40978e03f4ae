"""The baselines: copy-forward reads only earlier notes of the same patient in the test split, the others are
built as documented and seeded; the registry lists every name with its doc, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import BASELINE_NAMES, BASELINE_READS
from notelm.core.errors import NoteLMError
from notelm.evaluation.baselines import REGISTRY, align, aligned_copy, baselines, copy_forward
from notelm.report.labels import BASELINE_DOC
from tests.stages.test_evaluate import PATIENTS, TEST_NOTES, TIMES, TRAIN_NOTES, _rows


def test_copy_forward_takes_the_patients_previous_test_note_and_falls_back_to_chance():
    rows = _rows(TEST_NOTES, PATIENTS, TIMES)
    chance = [f"chance {i}" for i in range(len(rows))]
    out, fallbacks = copy_forward(rows, rows, chance)
    assert out == ["chance 0", rows[0]["target"], "chance 2", rows[2]["target"], "chance 4", rows[4]["target"]]
    assert fallbacks == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), min_size=1, max_size=25), st.integers(0, 100))
def test_copy_forward_never_reads_another_split_or_a_later_note(notes, seed):
    """Over a seeded corpus split into train and test: every copied text is an earlier note of the same patient
    in the test split, or the chance fallback."""
    rng = np.random.default_rng(seed)
    rows = [{"note_id": f"n{i}", "subject_id": p, "chartdate": f"2150-01-{day % 28 + 1:02d}", "charttime": None,
             "prompt": f"prompt {i}", "target": f"target {i}"} for i, (p, day) in enumerate(notes)]
    test = [r for r in rows if rng.random() < 0.5] or rows[:1]
    scored = [r for i, r in enumerate(test) if i % 2]
    out, _ = copy_forward(scored, test, ["CHANCE"] * len(scored))
    for row, copied in zip(scored, out):
        if copied == "CHANCE":
            continue
        source = next(r for r in test if r["target"] == copied)  # from the test split only (context included)
        assert source["subject_id"] == row["subject_id"] and source is not row
        assert (source["chartdate"], test.index(source)) < (row["chartdate"], test.index(row))  # never later
    out, _ = copy_forward(test, test, ["CHANCE"] * len(test))
    for row, copied in zip(test, out):
        if copied == "CHANCE":
            continue
        source = next(r for r in test if r["target"] == copied)  # from the test split only
        assert source["subject_id"] == row["subject_id"] and source is not row
        assert (source["chartdate"], test.index(source)) < (row["chartdate"], test.index(row))  # never later


def test_other_baselines():
    test_rows = _rows(TEST_NOTES)
    train_rows = _rows(TRAIN_NOTES)
    built, _ = baselines(["chance", "prompt_tail", "retrieval", "copy_last_sentence"], train_rows, test_rows, 0)
    assert set(built["chance"]) <= {r["target"] for r in train_rows}
    assert built["chance"] == baselines(["chance"], train_rows, test_rows, 0)[0]["chance"]  # seeded
    for row, tail in zip(test_rows, built["prompt_tail"]):
        assert len(tail.split()) == len(row["target"].split()) or tail == row["prompt"]
        assert row["prompt"].endswith(tail)
    assert built["retrieval"][0] == TRAIN_NOTES[0][2] and built["retrieval"][2] == TRAIN_NOTES[1][2]
    assert built["copy_last_sentence"][0] == "CV: HR 80s NSR."
    with pytest.raises(NoteLMError, match="train split is empty"):
        baselines(["chance"], [], test_rows, 0)


def test_the_registry_names_every_baseline_with_its_doc():
    assert BASELINE_NAMES == tuple(REGISTRY) == tuple(BASELINE_DOC) == tuple(BASELINE_READS)  # one of each per name
    assert all(entry.name == name for name, entry in REGISTRY.items())
    assert set(EvaluateParams().baselines) <= set(BASELINE_NAMES)


def test_copy_forward_fallbacks_and_unknown_names():
    test_rows, train_rows = _rows(TEST_NOTES, PATIENTS, TIMES), _rows(TRAIN_NOTES)
    built, fallbacks = baselines(["copy_forward", "chance"], train_rows, test_rows, 0)
    assert fallbacks == 3 and list(built) == ["copy_forward", "chance"]
    assert baselines(["copy_forward", "copy_forward"], train_rows, test_rows, 0)[1] == 3  # counted once
    assert baselines(["prompt_tail"], [], test_rows, 0)[1] == 0  # needs no train split
    with pytest.raises(NoteLMError, match="unknown baseline"):
        baselines(["oracle"], train_rows, test_rows, 0)


def test_importing_the_registry_is_cheap():
    """The registry imports nothing heavy: numpy, sklearn and ROUGE load only when a baseline needing them is built."""
    code = ("import sys, notelm.evaluation.baselines; "
            "print(sorted(m for m in ('numpy', 'sklearn', 'scipy', 'torch', 'notelm.evaluation.rouge', 'notelm.evaluation.retrieval') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_align_finds_a_planted_alignment_and_falls_back_to_the_prompts_length():
    source = "Neuro: A+Ox3. CV: HR 80s NSR, BP 110/60. Resp: on 2L NC, LS clear. GI: abd soft.".split()
    at, matched = align("New events overnight. Neuro: sedated. CV: HR 80s".split(), source)
    assert source[at:at + 2] == ["NSR,", "BP"] and matched == 3  # `CV: HR 80s` aligned (case and commas ignored)
    at, matched = align("Overnight: CV: HR 80s NSR, BP stable".split(), source)
    assert source[at:at + 2] == ["Resp:", "on"] and matched == 5  # `CV: HR 80s NSR, BP` anchors; `stable` moves on one
    at, matched = align("nothing in common here".split(), source)
    assert (at, matched) == (4, 0)  # no run of 2 words: the prompt's length in words
    at, _ = align("ok. GI: abd soft.".split(), source)
    assert at == len(source) - 1  # always a word left to copy


def test_aligned_copy_copies_what_follows_in_the_previous_note_up_to_the_cap():
    rows = [{"note_id": "a", "subject_id": 1, "charttime": "2150-01-01 08:00:00", "prompt": "Neuro: A+Ox3. CV: HR 80s",
             "target": "NSR, BP 110/60.", "rest": "NSR, BP 110/60. Resp: on 2L NC, LS clear."},
            {"note_id": "b", "subject_id": 1, "charttime": "2150-01-01 20:00:00",
             "prompt": "Events: none. Neuro: sedated. CV: HR 80s", "target": "ST, BP 90/50.", "rest": "ST, BP 90/50."}]
    out, fallbacks = aligned_copy(rows, rows, ["CHANCE", "CHANCE"], cap=4)
    assert out == ["CHANCE", "NSR, BP 110/60. Resp:"] and fallbacks == 1  # the earlier note's rest, past its target


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), min_size=1, max_size=25), st.integers(0, 100))
def test_aligned_copy_never_reads_the_scored_note_a_later_note_or_another_split(notes, seed):
    """Every word it copies comes from an earlier note of the same patient in the test split (each note's words
    are its own), or it is the chance fallback."""
    rng = np.random.default_rng(seed)
    rows = [{"note_id": f"n{i}", "subject_id": p, "chartdate": f"2150-01-{day % 28 + 1:02d}", "charttime": None,
             "prompt": " ".join(f"p{i}_{k} w{k % 3}" for k in range(4)), "target": " ".join(f"t{i}_{k}" for k in range(4)),
             "rest": " ".join(f"t{i}_{k}" for k in range(8))} for i, (p, day) in enumerate(notes)]
    test = [r for r in rows if rng.random() < 0.5] or rows[:1]
    scored = [r for i, r in enumerate(test) if i % 2] or test
    out, _ = aligned_copy(scored, test, ["CHANCE"] * len(scored), cap=5)
    for row, copied in zip(scored, out):
        if copied == "CHANCE":
            continue
        owners = {w.split("_")[0][1:] for w in copied.split() if "_" in w}
        for owner in owners:
            source = rows[int(owner)]
            assert source in test and source["subject_id"] == row["subject_id"] and source is not row
            assert (source["chartdate"], test.index(source)) < (row["chartdate"], test.index(row))  # never later


def test_the_chart_baselines_fall_back_on_the_same_notes():
    test_rows, train_rows = _rows(TEST_NOTES, PATIENTS, TIMES), _rows(TRAIN_NOTES)
    built, fallbacks = baselines(["copy_forward", "aligned_copy"], train_rows, test_rows, 0, cap=48)
    assert fallbacks == 3 and built["aligned_copy"][0] == built["copy_forward"][0]  # both chance for a first note
