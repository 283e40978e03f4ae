"""evaluation/intervals.py: differences are paired over the same resampled patients and keyed by the variant names."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import BEST_BASELINE, CLAIM, DIFF, difference_key
from notelm.evaluation.intervals import Intervals, differences, likelihood


def _intervals(scores):
    rows = [{"subject_id": i // 2} for i in range(8)]
    ex = SimpleNamespace(rows=rows, refs=["a b"] * 8, generations={})
    return Intervals(ex, scores, EvaluateParams(bootstrap_samples=200))


def test_a_constant_gap_is_a_degenerate_paired_interval():
    base = np.linspace(0.1, 0.8, 8)
    scores = {v: {m: base + shift for m in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision",
                                          "bertscore_recall", "bertscore_f1")}
              for v, shift in (("pretrained", 0.0), ("finetuned", 0.1), ("chance", 0.05), ("prompt_tail", -0.1))}
    out = differences(_intervals(scores), ["pretrained", "finetuned"], ["chance", "prompt_tail"])
    assert set(out) == {DIFF, difference_key("finetuned", "chance"), difference_key("finetuned", "prompt_tail"), CLAIM}
    assert CLAIM == difference_key("finetuned", BEST_BASELINE)
    assert out[DIFF]["rougeL"] == pytest.approx(0.1)
    assert out[DIFF]["rougeL_ci_low"] == pytest.approx(0.1) and out[DIFF]["rougeL_verdict"] == "better"
    assert out[CLAIM]["rougeL_baseline"] == "chance"


def test_likelihood_needs_the_target_nll():
    assert likelihood([{"completion": "x"}], ["a b"]) is None
    got = likelihood([{"target_nll": np.log(2) * 3, "target_tokens": 3}], ["ab"])
    assert got["bits_per_byte"][0][0] == pytest.approx(3) and got["bits_per_byte"][1][0] == 3  # " ab": 3 bytes


def _facts(written, unsupported, contradicted=0, new_value=0):
    n = len(written)
    wrong = unsupported + contradicted + new_value
    return {"facts": np.array(written, float), "facts_matched": np.array(written, float) - wrong,
            "facts_contradicted": np.full(n, float(contradicted)), "facts_carried": np.zeros(n),
            "facts_new_value": np.full(n, float(new_value)), "facts_unsupported": np.full(n, float(unsupported)),
            "facts_unsupported_negative": np.zeros(n), "fact_errors": np.full(n, float(wrong))}


def test_fact_rates_are_ratios_of_sums_and_the_fact_bar_is_the_baseline_matching_most_facts_per_note():
    base = np.linspace(0.1, 0.8, 8)
    scores = {"finetuned": {"rougeL": base, **_facts([4] * 8, unsupported=1, new_value=1)},
              "copy": {"rougeL": base - 0.1, **_facts([5] * 8, unsupported=0, contradicted=1)},  # 4 matched a note
              "tail": {"rougeL": base - 0.2, **_facts([1] * 8, unsupported=0)},  # states least: no error at all
              "silent": {"rougeL": base - 0.3, **_facts([0] * 8, unsupported=0)}}  # writes no fact: no rate at all
    iv = _intervals(scores)
    assert iv.point("finetuned", "invented_fact_rate") == pytest.approx(0.5)
    assert iv.point("finetuned", "new_value_fact_rate") == pytest.approx(0.25)
    assert iv.point("copy", "fact_error_rate") == pytest.approx(0.2)
    assert not iv.has("silent", "fact_error_rate")
    claim = differences(iv, ["finetuned"], ["copy", "tail", "silent"])[CLAIM]
    for metric in ("invented_fact_rate", "fact_error_rate", "facts_matched", "fact_errors", "carried_fact_rate"):
        assert claim[f"{metric}_baseline"] == "copy"  # not `tail`, whose rates are lowest because it states least
    assert claim["fact_error_rate"] == pytest.approx(0.5 - 0.2) and claim["fact_error_rate_verdict"] == "worse"
    assert claim["facts_matched"] == pytest.approx(2 - 4) and claim["facts_matched_verdict"] == "worse"
    assert claim["fact_errors"] == pytest.approx(2 - 1) and claim["fact_errors_verdict"] == "worse"
    assert claim["rougeL_baseline"] == "copy" and claim["rougeL_verdict"] == "better"  # other metrics: best of each
    assert claim["carried_fact_rate_verdict"] == "not distinguishable"  # neutral, and neither carries anything
