"""names.py: the difference keys are built from the variant names, and the headline is read from the detail."""

from __future__ import annotations

from notelm.names import (
    BEST_BASELINE,
    CLAIM,
    DIFF,
    VARIANTS,
    difference_key,
    eval_systems,
    headline,
    leakage_metric_names,
)


def test_difference_keys_come_from_the_variant_names():
    pre, fine = VARIANTS
    assert DIFF == difference_key(fine, pre) == "finetuned-pretrained"
    assert CLAIM == difference_key(fine, BEST_BASELINE) == "finetuned-best_baseline"


def test_systems_and_headline_of_a_detail():
    detail = {"models": {"finetuned": {"rougeL": 0.4, "bits_per_byte": 0.5}, "pretrained": {"rougeL": 0.1}},
              "baselines": {"chance": {"rougeL": 0.2, "rouge1": 0.3}},
              "differences": {CLAIM: {"rougeL": 0.2, "rougeL_verdict": "better", "rougeL_baseline": "chance"}},
              "bootstrap": {"clusters": 22, "warning": None}, "n_examples": 46}
    assert [(n, k) for n, k, _ in eval_systems(detail)] == [("pretrained", "model"), ("finetuned", "model"),
                                                             ("chance", "baseline")]
    out = headline(detail)
    assert out["finetuned"] == {"rougeL": 0.4, "bits_per_byte": 0.5} and out["baselines"]["chance"] == {"rougeL": 0.2}
    assert out["finetuned_vs_best_baseline"] == {"rougeL": 0.2, "rougeL_verdict": "better", "rougeL_baseline": "chance"}
    assert "finetuned_vs_pretrained" not in out and out["few_clusters"] is False


def test_leakage_names_cover_test_and_val():
    names = leakage_metric_names(8)
    assert "ngram8_containment" in names and "val_vs_train.exact_dup_val_in_train_rate" in names
