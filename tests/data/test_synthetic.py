"""Tests for the synthetic corpus generator (src/notelm/data/synthetic.py)."""

from __future__ import annotations

import random
import re
import statistics
from collections import defaultdict

import pytest

from notelm.config.synthetic import SyntheticParams
from notelm.core.errors import ParamsError
from notelm.data import synthetic
from notelm.data.synthetic import NURSING_CATEGORIES, generate_rows
from notelm.data.synthetic_vocab import OTHER_CATEGORIES, SECTIONS


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return generate_rows(SyntheticParams())


def _nursing(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["CATEGORY"] in NURSING_CATEGORIES and not r["ISERROR"] and r["TEXT"].strip()]


def _ngrams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_several_admissions_and_notes_per_patient(rows: list[dict]) -> None:
    cfg = SyntheticParams()
    admissions: dict[int, set[int]] = defaultdict(set)
    notes: dict[int, int] = defaultdict(int)
    for r in rows:
        if r["CATEGORY"] in NURSING_CATEGORIES:
            admissions[r["SUBJECT_ID"]].add(r["HADM_ID"])
            notes[r["HADM_ID"]] += 1
    assert len(admissions) == cfg.patients
    lo, hi = cfg.admissions_per_patient
    assert all(lo <= len(a) <= hi for a in admissions.values())
    assert all(n >= cfg.notes_per_admission[0] for n in notes.values())
    assert len({r["HADM_ID"] for r in rows if r["HADM_ID"] is not None}) == sum(len(a) for a in admissions.values())
    texts = [r["TEXT"] for r in _nursing(rows)]
    assert any("0700-1900" in t or "7a-7p" in t for t in texts) and any("1900-0700" in t or "7p-7a" in t for t in texts)


def test_nursing_notes_are_system_by_system_and_compact(rows: list[dict]) -> None:
    notes = _nursing(rows)
    for r in notes:
        text = r["TEXT"]
        for label in ("Neuro", "CV", "Resp", "GI/GU", "Plan"):  # Skin, Pain and Social are left out at times
            assert re.search(rf"^{re.escape(label)}:", text, re.M | re.I), (label, text)
        assert re.search(r"HR \d+-\d+", text)
    assert sum("SpO2" in r["TEXT"] for r in notes) >= 0.75 * len(notes)  # long notes lose their last sentences
    words = [len(r["TEXT"].split()) for r in notes]
    assert 100 <= statistics.mean(words) <= 180
    assert max(words) <= SyntheticParams().words_per_note[1]
    corpus = "\n".join(r["TEXT"] for r in notes)
    for term in ("A&O x3", "MAE", "PERRL", "NSR", "Abd soft NT/ND", "Foley", "UO", "PRN", "Levophed",
                 "propofol", "Heparin gtt", "Insulin gtt", "Lasix", "BiPAP", "NC"):
        assert term in corpus, term


def test_deidentification_placeholders_present(rows: list[dict]) -> None:
    corpus = "\n".join(r["TEXT"] for r in rows)
    assert re.search(r"\[\*\*Hospital1 \d+\*\*\]", corpus)
    assert re.search(r"\[\*\*21\d\d-\d{1,2}-\d{1,2}\*\*\]", corpus)
    assert re.search(r"\[\*\*First Name8 \(NamePattern2\) \d+\*\*\]", corpus)
    assert re.search(r"\[\*\*Last Name \(STitle\) \d+\*\*\]", corpus)
    assert all(t.count("[**") == t.count("**]") for t in (r["TEXT"] for r in rows))


def test_copy_forward_within_patient_not_across(rows: list[dict]) -> None:
    by_patient: dict[int, list[str]] = defaultdict(list)
    for r in _nursing(rows):
        by_patient[r["SUBJECT_ID"]].append(r["TEXT"])
    rng = random.Random(0)
    subjects = list(by_patient)
    same, other = [], []
    for sid, texts in by_patient.items():
        for a, b in zip(texts, texts[1:], strict=False):
            grams = _ngrams(b)
            same.append(len(grams & _ngrams(a)) / len(grams))
            stranger = rng.choice(by_patient[rng.choice([s for s in subjects if s != sid])])
            other.append(len(grams & _ngrams(stranger)) / len(grams))
    assert statistics.mean(same) > 0.2  # later notes repeat earlier text verbatim, a stranger's far less
    assert statistics.mean(same) > 4 * statistics.mean(other)


def test_patients_have_their_own_profiles(rows: list[dict]) -> None:
    first_lines = {}
    for r in _nursing(rows):
        first_lines.setdefault(r["SUBJECT_ID"], r["TEXT"].split("\n")[1].split(" admitted ")[0])
    assert len(set(first_lines.values())) == len(first_lines)


def test_categories_errors_and_blanks(rows: list[dict]) -> None:
    cfg = SyntheticParams()
    cats = {r["CATEGORY"] for r in rows}
    assert {"Nursing", "Nursing/other", "Physician ", "Radiology", "ECG", "Discharge summary"} <= cats
    other = sum(r["CATEGORY"] not in NURSING_CATEGORIES for r in rows)
    assert abs(other / len(rows) - cfg.other_category_share) < 0.06
    assert sum(r["ISERROR"] == 1 for r in rows) == cfg.error_rows
    assert sum(not r["TEXT"].strip() for r in rows) == cfg.blank_rows
    assert all(r["CHARTTIME"] is None for r in rows if r["CATEGORY"] == "Discharge summary")
    none = generate_rows(SyntheticParams(patients=5, other_category_share=0.0, error_rows=0, blank_rows=0))
    assert {r["CATEGORY"] for r in none} <= set(NURSING_CATEGORIES)
    assert not any(r["ISERROR"] for r in none) and all(r["TEXT"].strip() for r in none)


def test_default_corpus_is_fast_and_sized_for_cpu_training() -> None:
    import time

    start = time.perf_counter()
    rows = generate_rows(SyntheticParams())
    assert time.perf_counter() - start < 5
    assert 300 <= len(_nursing(rows)) <= 600
    assert synthetic.corpus_stats(rows)["nursing_notes"] == sum(r["CATEGORY"] in NURSING_CATEGORIES for r in rows)


def test_every_section_and_category_has_a_writer() -> None:
    assert list(synthetic.SECTION_FUNCS) == list(SECTIONS)
    assert set(synthetic.OTHER_FUNCS) == set(OTHER_CATEGORIES)


def test_more_spoiled_rows_than_nursing_notes_names_the_key() -> None:
    cfg = SyntheticParams(patients=1, admissions_per_patient=[1, 1], notes_per_admission=[1, 1], error_rows=1,
                          blank_rows=1)
    with pytest.raises(ParamsError, match=r"synthetic\.error_rows"):
        generate_rows(cfg)
