"""The train stage on tiny random models: packing, full fine-tune, outputs, resume bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from notelm.config import ParamsError, load_section
from notelm.models import ModelSpec
from notelm.train import TrainConfig, fingerprint, tokenize_examples, train, training_texts
from tiny import make_tokenizer


def test_packing_fills_blocks_and_padding_is_not_scored():
    tok = make_tokenizer()
    texts = training_texts([{"prompt": "Pt alert", "target": "and oriented x3."}] * 10, tok.eos_token)
    packed = tokenize_examples(texts, tok, 16, packing=True)
    assert all(len(b) == 16 for b in packed["input_ids"])
    assert all(m == [1] * 16 for m in packed["attention_mask"])
    padded = tokenize_examples(texts, tok, 16, packing=False)
    n = sum(padded["attention_mask"][0])
    assert n < 16 and padded["labels"][0][n:] == [-100] * (16 - n)
    assert padded["labels"][0][:n] == padded["input_ids"][0][:n]


def test_train_config_rejects_bad_values():
    with pytest.raises(ParamsError, match="train.method"):
        load_section(TrainConfig, {"train": {"method": "adapters"}}, "train")
    with pytest.raises(ParamsError, match="train.batch_size"):
        load_section(TrainConfig, {"train": {"batch_size": 0}}, "train")
    with pytest.raises(ParamsError, match="train.epocs"):
        load_section(TrainConfig, {"train": {"epocs": 1}}, "train")


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_full_finetune_writes_a_loadable_checkpoint_and_dvclive_metrics(prepared, tiny_model_factory, monkeypatch,
                                                                         family):
    monkeypatch.chdir(prepared)
    spec = ModelSpec(name="tiny", source="unused", family=family)
    cfg = TrainConfig(max_steps=3, batch_size=4, max_length=32, precision="fp32", learning_rate=1e-3)
    summary = train(cfg, spec, tiny_model_factory(family))
    assert summary["steps"] == 3 and summary["method"] == "full"
    assert summary["best_val_loss"] is not None
    out = prepared / "models/finetuned"
    assert (out / "model.safetensors").is_file()
    AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "notelm_train.json").read_text())["steps"] == 3
    live = json.loads((prepared / "dvclive/metrics.json").read_text())
    assert "eval" in live and "train" in live and live["step"] == 3
    assert "learning_rate: 0.001" in (prepared / "dvclive/params.yaml").read_text()  # the TrainingArguments


def test_fingerprint_changes_with_params_and_data(prepared):
    spec = ModelSpec(name="tiny", source="x")
    data = prepared / "data/prepared"
    a = fingerprint(TrainConfig(), spec, data)
    assert a == fingerprint(TrainConfig(), spec, data)
    assert a != fingerprint(TrainConfig(learning_rate=1e-4), spec, data)
    (data / "train.jsonl").write_text((data / "train.jsonl").read_text()[:-200] + "\n")
    assert a != fingerprint(TrainConfig(), spec, data)


def test_fingerprint_changes_with_base_weights_and_training_code(prepared, tiny_model_factory, tmp_path, monkeypatch):
    import shutil

    import notelm.train as train_module

    spec = ModelSpec(name="tiny", source="x")
    data = prepared / "data/prepared"
    base = tmp_path / "base"
    shutil.copytree(tiny_model_factory("llama"), base)
    code = tmp_path / "code"
    code.mkdir()
    for name in train_module.TRAINING_CODE:
        shutil.copy(Path(train_module.__file__).with_name(name), code / name)
    monkeypatch.setattr(train_module, "__file__", str(code / "train.py"))

    a = fingerprint(TrainConfig(), spec, data, base)
    assert a == fingerprint(TrainConfig(), spec, data, base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    b = fingerprint(TrainConfig(), spec, data, base)
    assert b != a
    (code / "loss.py").write_text((code / "loss.py").read_text() + "\n# a fix\n")
    assert fingerprint(TrainConfig(), spec, data, base) != b
