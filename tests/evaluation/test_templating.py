"""evaluation/templating.py: pairs of different patients only, the similarity of identical texts, and the shared n-grams."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from notelm.evaluation.templating import cross_patient_similarity, patient_pairs, repeated_ngrams


def test_pairs_join_only_different_patients_and_are_sampled_when_many():
    pairs = patient_pairs([1, 1, 2, 3], seed=0)
    assert pairs == [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    many = patient_pairs(list(range(300)), seed=0, limit=50)
    assert len(many) == 50 and many == patient_pairs(list(range(300)), seed=0, limit=50)  # seeded
    assert patient_pairs([7, 7, 7], seed=0) == []


def test_identical_texts_score_one_and_unrelated_ones_zero():
    same = ["BP 125-149/57-70. SpO2 94-99% on RA."] * 3
    assert cross_patient_similarity(same, patient_pairs([1, 2, 3], 0)) == pytest.approx(1.0)
    assert cross_patient_similarity(["alpha beta", "gamma delta"], [(0, 1)]) == 0.0
    assert cross_patient_similarity(same, []) is None


def test_repeated_ngrams_count_texts_not_occurrences():
    texts = ["a b c d a b c d", "x a b c d", "q r s t"]
    assert repeated_ngrams(texts, n=4, top=2) == [("a b c d", 2)]  # twice in the first text counts once
    assert repeated_ngrams(["a b c d", "e f g h"], n=4) == []  # nothing shared


def test_repeated_ngrams_break_ties_the_same_way_in_every_process():
    """Ties go to the n-gram seen first: the same order under any PYTHONHASHSEED (a report is a DVC output)."""
    code = ("from notelm.evaluation.templating import repeated_ngrams; "
            "print(repeated_ngrams(['a b c d e f g h i j k l', 'a b c d e f g h i j k l'], top=5))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert runs == {"[('a b c d', 2), ('b c d e', 2), ('c d e f', 2), ('d e f g', 2), ('e f g h', 2)]\n"}
