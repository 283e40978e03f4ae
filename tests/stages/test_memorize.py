"""The memorize stage on tiny checkpoints: a model made to learn a train note is reported giving it back, the
gate fails with a message naming the metric (after writing every file), identifiers in generations are counted."""

from __future__ import annotations

import json
import shutil

import pytest

from notelm.config.names import MEMORIZATION_HEADLINE
from notelm.core.errors import NoteLMError
from notelm.core.files import read_jsonl, write_jsonl
from notelm.core.paths import SOURCE_RECORD, TRAIN_RECORD
from notelm.stages import memorize
from notelm.training.blocks import training_text
from notelm.training.canaries import draw
from notelm.training.weights import load_checkpoint
from tests.privacy.test_memorize import NOTE, OTHER, overfit, row

PARAMS = {"model": "tiny", "memorize": {"sample": 4, "positions": 2, "prefix_tokens": 8, "suffix_tokens": 16,
                                        "canary_candidates": 31, "bootstrap_samples": 200}}
TRAINED = {"max_length": 256, "packing": True}  # the train record's block settings: one short block holds all


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
    canaries = {"planted": ["123456"], "controls": ["654321"], "repeats": 1, "placements": {}}
    (tmp_path / "models/finetuned" / TRAIN_RECORD).write_text(json.dumps({**TRAINED, "canaries": canaries}))
    write_jsonl("generations/pretrained.jsonl", [{"completion": "HR 80s NSR."}])
    write_jsonl("generations/finetuned.jsonl", [{"completion": "Spoke with Dr. Smith on 3/14/2150."}])
    return tmp_path


def test_a_model_made_to_learn_a_train_note_is_reported_giving_it_back(setup):
    headline = memorize.run(PARAMS | {"memorize": {**PARAMS["memorize"], "fail_on": {}}})
    detail = json.loads((setup / "metrics/detail/memorization.json").read_text())
    fine, pre = detail["finetuned"], detail["pretrained"]
    # the note learnt from its first token: from its start the model writes it on; 8 tokens of its middle alone,
    # without what came before them, need not be enough
    assert fine["exact_train"] >= 0.5 and fine["exact_test"] == 0.0 and fine["exact_gap"] == fine["exact_train"]
    assert fine["exact_gap_upper"] >= fine["exact_gap"] and pre["exact_train"] == 0.0
    assert 0 <= fine["canary_exposure_max"] <= 5.0 and "control_exposure_mean" in fine and "canary_gap_upper" in fine
    assert headline["finetuned"] == {k: round(fine[k], 6) if isinstance(fine[k], float) else fine[k]
                                     for k in MEMORIZATION_HEADLINE if k != "identifiers"} | {"identifiers": 2}
    assert headline["pretrained"]["identifiers"] == 0 and headline["references"] == {"identifiers": 0}
    assert headline["gate"] == "pass" and json.loads((setup / "metrics/memorization.json").read_text()) == headline
    lines = read_jsonl(setup / "generations/extraction.jsonl")
    assert [(x["variant"], x["split"]) for x in lines] == [(v, s) for v in ("pretrained", "finetuned")
                                                           for s in ("train",) * 2 + ("test",) * 2]
    assert {x["note_id"] for x in lines if x["split"] == "train"} == {"a"}
    assert {x["offset"] for x in lines if x["split"] == "train"} == {0, 24}  # two windows of the one train note
    first = next(x for x in lines[4:6] if x["offset"] == 0)  # the fine-tuned model from the note's start
    assert first["exact"] == 1.0 and first["completion"] == first["reference"] and first["lcs"] == 16
    assert detail["matching"]["pairs"] == 2 and set(detail["matching"]["offsets"]) == {"0", "24"}
    assert detail["finetuned"]["identifiers"]["name"] == 1 and detail["finetuned"]["identifiers"]["date"] == 1
    assert set(detail["checkpoints"]) == {"pretrained", "finetuned"}


def test_the_gate_fails_on_a_planted_gap_naming_the_bound_and_what_to_do_after_writing_every_file(setup, caplog):
    with pytest.raises(memorize.MemorizationError,
                       match=r"finetuned.exact_gap_upper = [\d.]+ > 0.1 allowed[\s\S]*data.fraction"):
        memorize.run(PARAMS)
    detail = json.loads((setup / "metrics/detail/memorization.json").read_text())
    assert detail["gate"] == "fail" and detail["problems"]["finetuned"][0].startswith("finetuned.exact_gap_upper = ")
    assert (setup / "generations/extraction.jsonl").is_file()
    warned = memorize.run(PARAMS | {"memorize": {**PARAMS["memorize"], "enforce": False}})
    assert warned["gate"] == "fail (warned)" and "MEMORIZATION above memorize.fail_on" in caplog.text


def test_the_gate_passes_a_model_that_memorized_nothing(setup):
    shutil.rmtree(setup / "models/finetuned")  # the fine-tuned weights are the pre-trained ones: no gap at all
    shutil.copytree(setup / "models/base/tiny", setup / "models/finetuned")
    planted, controls = draw(8, seed=0)
    record = {**TRAINED, "canaries": {"planted": planted, "controls": controls, "repeats": 1, "placements": {}}}
    (setup / "models/finetuned" / TRAIN_RECORD).write_text(json.dumps(record))
    headline = memorize.run(PARAMS)  # the default limits of memorize.fail_on
    detail = json.loads((setup / "metrics/detail/memorization.json").read_text())
    assert headline["gate"] == "pass" and detail["problems"] == {}
    assert detail["finetuned"]["exact_gap"] == 0.0  # an untrained model writes no window exactly
    assert detail["finetuned"]["lcs_gap"] == detail["pretrained"]["lcs_gap"]  # the same weights on the same windows
    assert set(detail["power"]) == {"finetuned.exact_gap_upper", "finetuned.lcs_gap_upper",
                                    "finetuned.canary_gap_upper"}


def test_a_train_record_without_its_block_settings_asks_to_retrain(setup):
    (setup / "models/finetuned" / TRAIN_RECORD).write_text(json.dumps({"canaries": {"planted": ["1"], "controls": ["2"]}}))
    with pytest.raises(NoteLMError, match=r"notelm_train.json: lacks max_length, packing, canaries.placements .*"
                                          r"dvc repro train"):
        memorize.run(PARAMS)


def test_fail_on_names_only_known_metrics():
    from notelm.config.memorize import MemorizeParams
    from notelm.core.errors import ParamsError
    from notelm.core.loader import load_section

    with pytest.raises(ParamsError, match="memorize.fail_on.finetuned.exact: unknown metric"):
        load_section(MemorizeParams, {"memorize": {"fail_on": {"finetuned.exact": 0.1}}})
    assert load_section(MemorizeParams, {"memorize": {"fail_on": {"pretrained.lcs_gap_upper": 2}}}).fail_on
