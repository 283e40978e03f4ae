"""The memorize stage on tiny checkpoints: a model made to learn a train note is reported giving it back, the
gate fails with a message naming the metric (after writing every file), identifiers in generations are counted."""

from __future__ import annotations

import json
import shutil

import pytest

from notelm.core.files import read_jsonl, write_jsonl
from notelm.core.paths import SOURCE_RECORD, TRAIN_RECORD
from notelm.stages import memorize
from notelm.training.blocks import training_text
from notelm.training.weights import load_checkpoint
from tests.privacy.test_memorize import NOTE, OTHER, overfit, row

PARAMS = {"model": "tiny", "memorize": {"sample": 4, "prefix_tokens": 8, "suffix_tokens": 16, "canary_candidates": 31,
                                        "bootstrap_samples": 200}}


@pytest.fixture
def setup(tmp_path, tiny_model_factory, monkeypatch):
    """tmp_path as a project: one train note, two test notes, a base model and one fine-tuned on the train note
    (with a planted canary recorded), generations of both. Returns tmp_path."""
    monkeypatch.chdir(tmp_path)
    train = [row("a", 1, NOTE)]
    write_jsonl("data/prepared/train.jsonl", train)
    write_jsonl("data/prepared/test.jsonl", [row("b", 2, OTHER), {**row("c", 3, OTHER), "scored": False}])
    base = shutil.copytree(tiny_model_factory("llama"), tmp_path / "models/base/tiny")
    (base / SOURCE_RECORD).write_text(json.dumps({"row": {"name": "tiny", "source": "unused"}}))
    model, tokenizer = load_checkpoint(base)
    overfit(model, tokenizer, [training_text(train[0], "")])
    model.save_pretrained(tmp_path / "models/finetuned")
    tokenizer.save_pretrained(tmp_path / "models/finetuned")
    canaries = {"planted": ["123456"], "controls": ["654321"], "repeats": 1}
    (tmp_path / "models/finetuned" / TRAIN_RECORD).write_text(json.dumps({"canaries": canaries}))
    write_jsonl("generations/pretrained.jsonl", [{"completion": "HR 80s NSR."}])
    write_jsonl("generations/finetuned.jsonl", [{"completion": "Spoke with Dr. Smith on 3/14/2150."}])
    return tmp_path


def test_a_model_made_to_learn_a_train_note_is_reported_giving_it_back(setup):
    headline = memorize.run(PARAMS | {"memorize": {**PARAMS["memorize"], "fail_on": {}}})
    detail = json.loads((setup / "metrics/detail/memorization.json").read_text())
    fine, pre = detail["finetuned"], detail["pretrained"]
    assert fine["exact_train"] == 1.0 and fine["exact_test"] == 0.0 and fine["exact_gap"] == 1.0
    assert fine["lcs_train"] == 16 and pre["exact_train"] == 0.0
    assert 0 <= fine["canary_exposure_max"] <= 5.0 and "control_exposure_mean" in fine
    assert headline["finetuned"] == {"exact_gap": 1.0, "lcs_gap": fine["lcs_gap"], "rougeL_gap": round(fine["rougeL_gap"], 6),
                                     "canary_exposure_max": round(fine["canary_exposure_max"], 6), "identifiers": 2}
    assert headline["pretrained"]["identifiers"] == 0 and headline["references"] == {"identifiers": 0}
    assert headline["gate"] == "pass" and json.loads((setup / "metrics/memorization.json").read_text()) == headline
    lines = read_jsonl(setup / "generations/extraction.jsonl")
    assert [(x["variant"], x["split"]) for x in lines] == [
        ("pretrained", "train"), ("pretrained", "test"), ("finetuned", "train"), ("finetuned", "test")]
    assert lines[0]["note_id"] == "a" and lines[1]["note_id"] in ("b", "c")  # any test note is unseen: scored or not
    assert lines[2]["exact"] == 1.0 and lines[2]["completion"] == lines[2]["reference"]
    assert detail["finetuned"]["identifiers"]["name"] == 1 and detail["finetuned"]["identifiers"]["date"] == 1
    assert set(detail["checkpoints"]) == {"pretrained", "finetuned"}


def test_the_gate_names_the_metric_and_what_to_do_after_writing_every_file(setup, caplog):
    with pytest.raises(memorize.MemorizationError, match=r"finetuned.exact_gap = 1 > 0.1 allowed[\s\S]*data.fraction"):
        memorize.run(PARAMS)
    detail = json.loads((setup / "metrics/detail/memorization.json").read_text())
    assert detail["gate"] == "fail" and detail["problems"] == {"finetuned": ["finetuned.exact_gap = 1 > 0.1 allowed"]}
    assert (setup / "generations/extraction.jsonl").is_file()
    warned = memorize.run(PARAMS | {"memorize": {**PARAMS["memorize"], "enforce": False}})
    assert warned["gate"] == "fail (warned)" and "MEMORIZATION above memorize.fail_on" in caplog.text


def test_fail_on_names_only_known_metrics():
    from notelm.config.memorize import MemorizeParams
    from notelm.core.errors import ParamsError
    from notelm.core.loader import load_section

    with pytest.raises(ParamsError, match="memorize.fail_on.finetuned.exact: unknown metric"):
        load_section(MemorizeParams, {"memorize": {"fail_on": {"finetuned.exact": 0.1}}})
    assert load_section(MemorizeParams, {"memorize": {"fail_on": {"pretrained.lcs_gap": 2}}}).fail_on
