"""The train stage on tiny random models: packing, full fine-tune, outputs, resume bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import make_tokenizer
from transformers import AutoModelForCausalLM

from notelm.errors import ParamsError
from notelm.params import ModelRow, TrainParams, load_section
from notelm.stages.train import (
    fingerprint,
    resume_point,
    tokenize_examples,
    train,
    training_texts,
)


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
        load_section(TrainParams, {"train": {"method": "adapters"}}, "train")
    with pytest.raises(ParamsError, match="train.batch_size"):
        load_section(TrainParams, {"train": {"batch_size": 0}}, "train")
    with pytest.raises(ParamsError, match="train.epocs"):
        load_section(TrainParams, {"train": {"epocs": 1}}, "train")


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


def test_fingerprint_changes_with_params_and_data(prepared):
    row = ModelRow(name="tiny", source="x")
    data = prepared / "data/prepared"
    a = fingerprint(TrainParams(), row, data)
    assert a == fingerprint(TrainParams(), row, data)
    assert a == fingerprint(TrainParams(resume="never", check_memory=False), row, data)  # these shape no weights
    changed = fingerprint(TrainParams(learning_rate=1e-4), row, data)
    assert changed["run_id"] != a["run_id"] and changed["parts"]["params"] != a["parts"]["params"]
    (data / "train.jsonl").write_text((data / "train.jsonl").read_text()[:-200] + "\n")
    assert fingerprint(TrainParams(), row, data)["parts"]["data"] != a["parts"]["data"]


def test_fingerprint_changes_with_base_weights_and_training_code(prepared, tiny_model_factory, tmp_path, monkeypatch):
    import shutil

    import notelm.stages.train as train_module

    row = ModelRow(name="tiny", source="x")
    data = prepared / "data/prepared"
    base = tmp_path / "base"
    shutil.copytree(tiny_model_factory("llama"), base)
    code = tmp_path / "code"
    code.mkdir()
    copies = tuple(Path(shutil.copy(path, code / path.name)) for path in train_module.TRAINING_CODE)
    assert {p.name for p in copies} == {"train.py", "loss.py", "weights.py"}
    monkeypatch.setattr(train_module, "TRAINING_CODE", copies)

    a = fingerprint(TrainParams(), row, data, base)
    assert a == fingerprint(TrainParams(), row, data, base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    b = fingerprint(TrainParams(), row, data, base)
    assert b["parts"]["base weights"] != a["parts"]["base weights"]
    (code / "loss.py").write_text((code / "loss.py").read_text() + "\n# a fix\n")
    assert fingerprint(TrainParams(), row, data, base)["parts"]["training code"] != b["parts"]["training code"]


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_resume_point_says_why_it_resumes_starts_fresh_or_discards(tmp_path):
    run = {"run_id": "a", "parts": {"params": "p", "data": "d"}}
    ckpt = tmp_path / "ckpt"
    assert resume_point(ckpt, run, "auto") == (None, f"no checkpoint in {ckpt}: starting fresh")

    ckpt.mkdir()
    (ckpt / "notelm_run.json").write_text(json.dumps(run))
    _checkpoint(ckpt, 5)
    _checkpoint(ckpt, 10, complete=False)  # cut short by a kill: ignored and removed
    path, why = resume_point(ckpt, run, "auto")
    assert path == str(ckpt / "checkpoint-5") and why == f"resuming this very run from {path} (step 5)"
    assert not (ckpt / "checkpoint-10").exists()

    other = {"run_id": "b", "parts": {"params": "p", "data": "changed"}}
    path, why = resume_point(ckpt, other, "auto", clean=False)
    assert path is None and "of an earlier run (changed: data); starting fresh" in why and ckpt.exists()

    path, why = resume_point(ckpt, run, "never")
    assert path is None and why.startswith("train.resume=never: discarding") and not ckpt.exists()
