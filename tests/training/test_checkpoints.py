"""Fingerprint and resume bookkeeping (notelm.training.checkpoints): what a checkpoint depends on, and why a run resumes."""

from __future__ import annotations

import json
from pathlib import Path

from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.training.checkpoints import fingerprint, resume_point


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

    import notelm.training.checkpoints as checkpoints_module

    row = ModelRow(name="tiny", source="x")
    data = prepared / "data/prepared"
    base = tmp_path / "base"
    shutil.copytree(tiny_model_factory("llama"), base)
    code = tmp_path / "code"
    code.mkdir()
    copies = tuple(Path(shutil.copy(path, code / path.name)) for path in checkpoints_module.TRAINING_CODE)
    assert {p.name for p in copies} == {"train.py", "blocks.py", "canaries.py", "trainer.py", "loss.py", "weights.py"}
    monkeypatch.setattr(checkpoints_module, "TRAINING_CODE", copies)

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

