"""Tests of the audit stage: limits fail the stage (or warn), both metrics files are written, params are checked.

The leakage engine it runs (notelm.privacy.audit) is tested in tests/privacy/test_audit.py, whose corpus helpers these use.
"""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import pytest
import yaml

from notelm.config.audit import AuditParams
from notelm.config.names import leakage_metric_names
from notelm.core.errors import NoteLMError, ParamsError
from notelm.core.files import write_jsonl
from notelm.core.loader import load_section
from notelm.privacy.audit import audit
from notelm.stages.audit import (
    LeakageError,
    _get,
    check_thresholds,
    run,
)
from tests.privacy.test_audit import corpus, note_words, row, vocab


def write_prepared(root: Path, train: list[dict], test: list[dict], val: list[dict] | None = None) -> dict:
    """Write data/prepared under `root` (the tests run the stage there, with its default paths); return params."""
    prepared = root / "data/prepared"
    for split, rows in (("train", train), ("val", val or []), ("test", test)):
        write_jsonl(prepared / f"{split}.jsonl", rows)
    return {"audit": {}}


# ---------------------------------------------------------------------------------------------
# Thresholds and the stage.


def test_every_fail_on_metric_is_a_key_of_the_output():
    train, test = corpus(seed=7, n_train=10, n_test=5)
    for ngram in (13, 8):
        m = audit(train, test, AuditParams(ngram=ngram), val_rows=test)
        for key in leakage_metric_names(ngram):
            assert isinstance(_get(m, key), (int, float)), key


def test_fail_on_raises_naming_the_metric_and_writes_metrics_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, test = corpus(seed=9)
    train.append(dict(test[0]))  # one exact duplicate, and its subject shared
    params = write_prepared(tmp_path, train, test, val=test[:2])
    with pytest.raises(LeakageError) as err:
        run(params)
    message = str(err.value)
    assert "subject_overlap = 1 > 0" in message and "1 of 30 test subjects" in message
    assert "exact_dup_test_in_train = 1 > 0" in message and "1 of 30 test notes" in message
    assert "audit.enforce=false" in message
    written = json.loads((tmp_path / "metrics/detail/leakage.json").read_text())
    assert written["exact_dup_test_in_train"] == 1 and written["subject_overlap"] == 1
    assert written["val_vs_train"]["n_val"] == 2
    # what `dvc exp show` lists: the numbers the gate checks, and its outcome
    assert json.loads((tmp_path / "metrics/leakage.json").read_text()) == {
        "subject_overlap": 1, "exact_dup_test_in_train": 1, "gate": "fail"}


def test_enforce_false_warns_and_completes(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, test = corpus(seed=10)
    params = write_prepared(tmp_path, train + test[:3], test)
    params["audit"]["enforce"] = False
    with caplog.at_level(logging.WARNING, logger="notelm.stages.audit"):
        metrics = run(params)
    assert metrics["exact_dup_test_in_train"] == 3
    assert any(r.levelno == logging.WARNING and "exact_dup_test_in_train = 3" in r.getMessage() for r in caplog.records)


def test_clean_split_passes_and_null_disables_a_limit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, test = corpus(seed=11)
    params = write_prepared(tmp_path, train, test)
    assert run(params)["subject_overlap"] == 0
    train.append(row(99_999, note_words(random.Random(0), vocab("z")), subject=test[0]["subject_id"]))
    params = write_prepared(tmp_path, train, test)
    params["audit"]["fail_on"] = {"subject_overlap": None, "exact_dup_test_in_train": 0}
    assert run(params)["subject_overlap"] == 1


def test_check_thresholds_covers_rates_containment_and_val():
    train, test = corpus(seed=12)
    m = audit(train + test[:6], test, AuditParams(), val_rows=test[:2])
    cfg = AuditParams(fail_on={"near_dup_test_in_train_rate": 0.1, "ngram13_containment": 0.05,
                               "val_vs_train.exact_dup_val_in_train": 0, "target_in_train": 10})
    problems = check_thresholds(m, cfg)
    assert len(problems) == 3
    assert problems[0].startswith("near_dup_test_in_train_rate = 0.2 > 0.1") and "6 of 30 test notes" in problems[0]
    assert problems[1].startswith("ngram13_containment = ") and "13-grams" in problems[1]
    assert problems[2].startswith("val_vs_train.exact_dup_val_in_train = 2 > 0") and "2 of 2 val notes" in problems[2]


def test_run_writes_identical_bytes_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, test = corpus(seed=13)
    params = write_prepared(tmp_path, train + test[:2], test, val=train[:3])
    params["audit"]["enforce"] = False
    run(params)
    first = [(tmp_path / p).read_bytes() for p in ("metrics/leakage.json", "metrics/detail/leakage.json")]
    run(params)
    assert [(tmp_path / p).read_bytes() for p in ("metrics/leakage.json", "metrics/detail/leakage.json")] == first
    assert json.loads((tmp_path / "metrics/leakage.json").read_text())["gate"] == "fail (warned)"


def test_missing_split_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_prepared(tmp_path, *corpus(seed=14, n_train=3, n_test=2))
    (tmp_path / "data/prepared/val.jsonl").unlink()
    with pytest.raises(NoteLMError, match=r"val\.jsonl.*dvc repro prepare"):
        run(params)


def test_bad_json_line_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_prepared(tmp_path, *corpus(seed=16, n_train=3, n_test=2))
    with open(tmp_path / "data/prepared/train.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(NoteLMError, match=r"train\.jsonl:4: not valid JSON"):
        run(params)


# ---------------------------------------------------------------------------------------------
# Params.


@pytest.mark.parametrize("section, key", [
    ({"fail_on": {"bogus": 0}}, "audit.fail_on.bogus"),
    ({"fail_on": {"subject_overlap": -1}}, "audit.fail_on.subject_overlap"),
    ({"fail_on": {"subject_overlap": True}}, "audit.fail_on.subject_overlap"),
    ({"fail_on": {"subject_overlap": "0"}}, "audit.fail_on.subject_overlap"),
    ({"fail_on": [0]}, "audit.fail_on"),
    ({"ngram": 8, "fail_on": {"ngram13_containment": 0.5}}, "audit.fail_on.ngram13_containment"),
    ({"minhash_threshold": 0.0}, "audit.minhash_threshold"),
    ({"minhash_threshold": 1.5}, "audit.minhash_threshold"),
    ({"ngram": 0}, "audit.ngram"),
    ({"shingle": 0}, "audit.shingle"),
    ({"num_perm": 1}, "audit.num_perm"),
    ({"seed": -1}, "audit.seed"),
    ({"enforce": "yes"}, "audit.enforce"),
    ({"ngrams": 13}, "audit.ngrams"),
])
def test_bad_params_name_the_key(section, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        load_section(AuditParams, {"audit": section})


def test_unknown_fail_on_metric_lists_the_valid_ones():
    with pytest.raises(ParamsError) as err:
        AuditParams(fail_on={"exact_dups": 0})
    assert "exact_dup_test_in_train" in str(err.value) and "val_vs_train.near_dup_val_in_train" in str(err.value)


def test_a_null_limit_for_another_ngram_size_is_accepted():
    cfg = AuditParams(ngram=8, fail_on={"ngram13_containment": None, "ngram8_containment": 0.9})
    assert cfg.fail_on["ngram8_containment"] == 0.9


def test_params_yaml_audit_section_loads_with_the_default_limits():
    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    cfg = load_section(AuditParams, params)
    assert cfg.fail_on == AuditParams().fail_on  # params.yaml holds the default limits, null entries included
    assert set(cfg.fail_on) <= set(leakage_metric_names(cfg.ngram))
    assert cfg == AuditParams(fail_on=cfg.fail_on)
