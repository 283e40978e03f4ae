"""Tests for the synthetic corpus's vocabulary tables (src/notelm/data/synthetic_vocab.py): they fit together."""

from __future__ import annotations

import random

from notelm.data.synthetic_vocab import (
    CARE_EXTRAS,
    CAREVUE_LABELS,
    DIAGNOSES,
    DRIPS,
    NARRATIVE,
    OPTIONAL_SECTIONS,
    OTHER_CATEGORIES,
    OTHER_WEIGHTS,
    PARAPHRASES,
    PMH,
    RESP_LEVEL,
    RESP_NAME,
    SECTIONS,
    TITRATED,
)


def test_each_diagnosis_covers_severities_0_to_3_with_known_support_and_drips() -> None:
    for name, dx in DIAGNOSES.items():
        assert len(dx["resp"]) == len(dx["drips"]) == 4, name
        assert set(dx["resp"]) <= set(RESP_LEVEL), name
        assert {d for drips in dx["drips"] for d in drips} <= set(DRIPS), name
        lo, hi = dx["start"]
        assert 0 <= lo <= hi <= 3, name
        assert dx["reason"] and len(dx["plan"]) >= 3 and dx["study"] in {"chest", "head", "abdomen"}, name


def test_drips_render_a_dose_and_titrated_ones_exist() -> None:
    r = random.Random(0)
    for key, (label, dose) in DRIPS.items():
        assert label and isinstance(dose(r), str) and dose(r), key
    assert set(TITRATED) <= set(DRIPS)


def test_sections_labels_and_categories_fit_together() -> None:
    assert set(OPTIONAL_SECTIONS) <= set(SECTIONS)
    assert set(CAREVUE_LABELS) == set(SECTIONS) | {"Events"}
    assert set(RESP_NAME) == set(RESP_LEVEL)
    assert len(OTHER_CATEGORIES) == len(OTHER_WEIGHTS) and abs(sum(OTHER_WEIGHTS) - 1) < 1e-9
    assert len(CARE_EXTRAS) >= len(SECTIONS) + 1  # one extra sentence per fresh section, Events included
    assert len(PMH) >= 5


def test_paraphrases_and_narrative_lines_are_usable() -> None:
    for pattern, variants in PARAPHRASES:
        assert variants and pattern.pattern, pattern
    for line in NARRATIVE:
        assert "{" not in line.format(n=20, t="1400"), line
