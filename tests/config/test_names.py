"""config/names.py: the difference keys are built from the variant names, and the headline is read from the detail."""

from __future__ import annotations

from notelm.config.names import (
    BEST_BASELINE,
    CLAIM,
    DIFF,
    VARIANTS,
    difference_key,
    eval_systems,
    headline,
    leakage_metric_names,
    memorization_headline,
    suggest_headline,
)


def test_difference_keys_come_from_the_variant_names():
    pre, fine = VARIANTS
    assert DIFF == difference_key(fine, pre) == "finetuned-pretrained"
    assert CLAIM == difference_key(fine, BEST_BASELINE) == "finetuned-best_baseline"


def test_systems_and_headline_of_a_detail():
    detail = {"models": {"finetuned": {"rougeL": 0.4, "bits_per_byte": 0.5}, "pretrained": {"rougeL": 0.1}},
              "baselines": {"chance": {"rougeL": 0.2, "rouge1": 0.3}},
              "differences": {CLAIM: {"rougeL": 0.2, "rougeL_verdict": "better", "rougeL_baseline": "chance",
                                      "rougeL_ci_low": 0.1, "rougeL_ci_high": 0.3}},
              "bootstrap": {"clusters": 22, "warning": None}, "n_examples": 46}
    assert [(n, k) for n, k, _ in eval_systems(detail)] == [("pretrained", "model"), ("finetuned", "model"),
                                                             ("chance", "baseline")]
    out = headline(detail)
    assert out["finetuned"] == {"rougeL": 0.4, "bits_per_byte": 0.5} and out["baselines"]["chance"] == {"rougeL": 0.2}
    assert out["finetuned_vs_best_baseline"] == {"rougeL": 0.2, "rougeL_verdict": "better", "rougeL_baseline": "chance"}
    assert "finetuned_vs_pretrained" not in out and out["few_clusters"] is False  # interval bounds: detail only


def test_suggest_and_memorization_headlines_keep_values_and_verdicts_not_bounds():
    ratio = {"keystroke_savings": 0.5, "keystroke_savings_ci_low": 0.4, "keystroke_savings_ci_high": 0.6,
             "accept_rate": 0.3, "accept_rate_ci_low": 0.2, "accept_rate_ci_high": 0.4, "ceiling": 0.9}
    claim = {"keystroke_savings": -0.1, "keystroke_savings_ci_low": -0.2, "keystroke_savings_ci_high": -0.05,
             "keystroke_savings_verdict": "worse", "keystroke_savings_baseline": "ngram"}
    out = suggest_headline({"finetuned": ratio, "ngram": ratio, "finetuned_vs_best_proposer": claim,
                            "n_examples": 4, "clusters": 2, "max_words": 5})
    assert out == {"n_examples": 4, "clusters": 2, "finetuned": {"keystroke_savings": 0.5, "accept_rate": 0.3},
                   "ngram": {"keystroke_savings": 0.5, "accept_rate": 0.3},
                   "finetuned_vs_best_proposer": {"keystroke_savings": -0.1, "keystroke_savings_verdict": "worse",
                                                  "keystroke_savings_baseline": "ngram"}}
    block = {"exact_gap": 0.1234567891, "exact_gap_ci_low": 0.0, "exact_gap_upper": 0.2, "lcs_gap": 2.0,
             "canary_exposure_max": 3.0, "canary_gap": 0.5, "canary_gap_upper": 1.5,
             "identifiers": {"total": 3, "date": 3}}
    detail = {"finetuned": block, "references": {"identifiers": {"total": 0}, "notes": 9}, "gate": "pass"}
    assert memorization_headline(detail) == {"finetuned": {"exact_gap": 0.123457, "exact_gap_upper": 0.2,
                                                           "lcs_gap": 2.0, "canary_gap": 0.5, "canary_gap_upper": 1.5,
                                                           "identifiers": 3},
                                             "references": {"identifiers": 0}, "gate": "pass"}


def test_leakage_names_cover_test_and_val():
    names = leakage_metric_names(8)
    assert "ngram8_containment" in names and "val_vs_train.exact_dup_val_in_train_rate" in names
