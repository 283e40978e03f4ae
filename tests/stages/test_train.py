"""The train stage on tiny random models: full fine-tune, outputs, resume of a finished run.

The token blocks are tested in tests/training/test_blocks.py, fingerprint and resume in tests/training/test_checkpoints.py, the Trainer glue
in tests/training/test_trainer.py."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.core.errors import ParamsError
from notelm.core.loader import load_section
from notelm.stages.train import train


def test_train_config_rejects_bad_values():
    with pytest.raises(ParamsError, match="train.method"):
        load_section(TrainParams, {"train": {"method": "adapters"}})
    with pytest.raises(ParamsError, match="train.batch_size"):
        load_section(TrainParams, {"train": {"batch_size": 0}})
    with pytest.raises(ParamsError, match="train.epocs"):
        load_section(TrainParams, {"train": {"epocs": 1}})


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_full_finetune_writes_a_loadable_checkpoint_and_dvclive_metrics(prepared, tiny_model_factory, monkeypatch,
                                                                         family):
    monkeypatch.chdir(prepared)
    spec = ModelRow(name="tiny", source="unused", family=family)
    cfg = TrainParams(max_steps=3, batch_size=4, max_length=32, precision="fp32", learning_rate=1e-3)
    summary = train(cfg, spec, tiny_model_factory(family))
    assert summary["steps"] == 3 and summary["method"] == "full"
    assert summary["best_val_loss"] is not None
    out = prepared / "models/finetuned"
    assert (out / "model.safetensors").is_file()
    AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "notelm_train.json").read_text())["steps"] == 3
    live = json.loads((prepared / "dvclive/metrics.json").read_text())
    assert "eval" in live and "train" in live and live["step"] == 3
    assert "runtime" not in live["train"] and "samples_per_second" not in live["eval"]  # wall clock: logs/ only
    assert json.loads((prepared / "logs/train.json").read_text())["train_runtime"] > 0
    assert "learning_rate: 0.001" in (prepared / "dvclive/params.yaml").read_text()  # the TrainingArguments


def test_the_same_run_writes_byte_identical_outputs(prepared, tiny_model_factory, monkeypatch):
    """Nothing that changes from run to run (times, timestamps) reaches a DVC output: dvc.lock stays as it was."""
    monkeypatch.chdir(prepared)
    row = ModelRow(name="tiny", source="unused")
    cfg = TrainParams(max_steps=3, batch_size=4, max_length=32, precision="fp32", resume="never")

    def outputs():
        return {str(p.relative_to(prepared)): p.read_bytes() for d in ("models/finetuned", "dvclive")
                for p in sorted((prepared / d).rglob("*")) if p.is_file()}

    train(cfg, row, tiny_model_factory("llama"))
    first = outputs()
    train(cfg, row, tiny_model_factory("llama"))
    assert outputs() == first and "models/finetuned/model.safetensors" in first


def test_rerunning_a_finished_run_resumes_at_its_end_and_writes_the_same_outputs(prepared, tiny_model_factory,
                                                                                  monkeypatch):
    """`dvc repro` after an edit that shapes no weights: the final checkpoint is resumed, nothing is trained,
    and the outputs (train loss included) are byte-identical, so the stages after train stay cached."""
    monkeypatch.chdir(prepared)
    row = ModelRow(name="tiny", source="unused")
    # by epochs, as the default run: the Trainer resumed at the end of a max_steps run mid-epoch trains one step more
    cfg = TrainParams(epochs=1, batch_size=8, max_length=32, precision="fp32", logging_steps=5)

    def outputs():
        return {str(p.relative_to(prepared)): p.read_bytes() for d in ("models/finetuned", "dvclive")
                for p in sorted((prepared / d).rglob("*")) if p.is_file()}

    first_record = train(cfg, row, tiny_model_factory("llama"))
    first = outputs()
    again = train(cfg, row, tiny_model_factory("llama"))
    resumed_from = json.loads((prepared / "logs/train.json").read_text())["resumed_from"]
    assert resumed_from.endswith(f"checkpoint-{again['steps']}")
    assert outputs() == first
    assert again["train_loss"] == first_record["train_loss"] > 0



def test_canaries_are_planted_in_train_blocks_only_and_recorded(prepared, tiny_model_factory, monkeypatch):
    from notelm.stages.train import planted
    from notelm.training.blocks import build_dataset
    from notelm.training.weights import load_checkpoint

    monkeypatch.chdir(prepared)
    cfg = TrainParams(max_steps=2, batch_size=4, max_length=32, precision="fp32", canaries=2, canary_repeats=3)
    where, record = planted(cfg, prepared / "data/prepared/train.jsonl")
    assert len(record["planted"]) == 2 and len(record["controls"]) == 2 and sum(map(len, where.values())) == 6
    _, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    text = {split: tokenizer.decode(sum(build_dataset(prepared / f"data/prepared/{split}.jsonl", tokenizer, 32, True,
                                                     cache_dir=prepared / "cache", canaries=plan)["input_ids"], []))
            for split, plan in (("train", where), ("val", None))}
    assert text["train"].count(record["planted"][0]) == 3 and record["planted"][1] in text["train"]
    assert not any(s in text["val"] for s in record["planted"] + record["controls"])
    assert not any(s in text["train"] for s in record["controls"])  # controls are never planted
    for split in ("train", "val", "test"):  # the prepared splits stay as prepare wrote them
        assert not any(s in (prepared / f"data/prepared/{split}.jsonl").read_text() for s in record["planted"])
    summary = train(cfg, ModelRow(name="tiny", source="unused"), tiny_model_factory("llama"))
    assert summary["canaries"] == record
    assert json.loads((prepared / "models/finetuned/notelm_train.json").read_text())["canaries"] == record
    assert planted(TrainParams(), prepared / "data/prepared/train.jsonl") == ({}, None)
