"""evaluation/rouge.py: ROUGE on hand-made pairs, sentence-split rougeLsum, and fewer keys giving the same scores."""

from __future__ import annotations

import pytest

from notelm.config.names import ROUGE_KEYS
from notelm.evaluation.rouge import rouge_scores, split_sentences


def test_rouge_identical_is_one_and_unrelated_near_zero():
    ref = "Pt alert and oriented x3. Lungs clear bilaterally. Plan: wean O2 as tolerated."
    same = rouge_scores([ref], [ref])
    assert all(same[k][0] == pytest.approx(1.0) for k in ROUGE_KEYS)
    other = rouge_scores(["Wife visited, brought photos of grandchildren"], [ref])
    assert all(other[k][0] < 0.1 for k in ROUGE_KEYS)


def test_rougelsum_uses_sentences():
    # The same sentences in another order: LCS over the whole text is broken, summary-level LCS is not.
    ref = "Lungs clear bilaterally. Heparin gtt at 900 units. Foley draining clear urine."
    pred = "Foley draining clear urine. Heparin gtt at 900 units. Lungs clear bilaterally."
    s = rouge_scores([pred], [ref])
    assert s["rougeLsum"][0] == pytest.approx(1.0) and s["rougeL"][0] < 0.6
    assert split_sentences("A b. C d!  E f? g\nh") == ["A b.", "C d!", "E f?", "g", "h"]


def test_asking_for_fewer_rouge_keys_gives_the_same_scores_for_those():
    preds = ["Foley draining clear urine. Lungs clear.", "Pt alert, oriented x3", ""]
    refs = ["Lungs clear bilaterally. Foley draining clear yellow urine.", "Pt alert and oriented x3.", "Plan: wean"]
    full, some = rouge_scores(preds, refs), rouge_scores(preds, refs, keys=("rouge1", "rougeL"))
    assert set(some) == {"rouge1", "rougeL"}
    assert all((some[k] == full[k]).all() for k in some)
