"""Fingerprint and resume: whether a checkpoint in models/checkpoints/ may be resumed.

A checkpoint depends on the train params that shape the weights, the model row, the prepared splits, the
base weights, the training code (TRAINING_CODE) and the training libraries' versions; `fingerprint` hashes
each part, and `resume_point` resumes only the very same run, saying why it resumes, starts fresh or discards
an older run's checkpoints. `hash_files` is also the cache key of the token blocks (notelm.training.blocks).

Used by the train stage (notelm.stages.train) and notelm.training.blocks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.core.paths import split_path

FINGERPRINT = "notelm_run.json"
# the modules whose code shapes the trained weights: a change to any of it must not resume an older run's
# checkpoint (found by name, not imported: a library module never imports a stage)
TRAINING_MODULES = ("notelm.stages.train", "notelm.training.blocks", "notelm.training.canaries", "notelm.training.trainer", "notelm.training.loss",
                    "notelm.training.weights")
TRAINING_CODE = tuple(Path(importlib.util.find_spec(name).origin) for name in TRAINING_MODULES)
TRAINING_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")
NOT_SHAPING = ("resume", "check_memory")  # train params that do not change the weights


def hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while block := fh.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()[:16]


def fingerprint(cfg: TrainParams, row: ModelRow, data_dir: Path, model_dir: Path | None = None) -> dict[str, Any]:
    """What a checkpoint depends on, part by part — params, model row, data, base weights, training code,
    library versions — and `run_id`, the hash of them all: resume only ever continues the very same run."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    params = {k: v for k, v in asdict(cfg).items() if k not in NOT_SHAPING}
    parts = {
        "params": hashlib.sha256(json.dumps([params, asdict(row)], sort_keys=True).encode()).hexdigest()[:16],
        "data": hash_files([split_path("train", data_dir), split_path("val", data_dir)]),
        "base weights": hash_files(sorted(f for f in Path(model_dir).rglob("*") if f.is_file())) if model_dir else None,
        "training code": hash_files(list(TRAINING_CODE)),
        "libraries": json.dumps({name: installed(name) for name in TRAINING_LIBRARIES}, sort_keys=True),
    }
    return {"run_id": hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), "parts": parts}


def _complete_checkpoints(checkpoint_dir: Path, clean: bool) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint the Trainer finished (its trainer_state.json is the last file it writes);
    with `clean`, ones cut short by a kill are removed."""
    complete = []
    for path in checkpoint_dir.glob("checkpoint-*"):
        try:
            complete.append((json.loads((path / "trainer_state.json").read_text())["global_step"], path))
        except (OSError, ValueError, KeyError):
            if clean:
                shutil.rmtree(path, ignore_errors=True)
    return sorted(complete)


def resume_point(checkpoint_dir: Path, run: dict[str, Any], resume: str, clean: bool = True) -> tuple[str | None, str]:
    """(the newest complete checkpoint of this very run or None, why): the reason is logged as it is.

    Checkpoints of another run (any part of the fingerprint changed) or, with `resume` = never, of any run
    are discarded when `clean` (the main process), and the reason names what changed.
    """
    if not checkpoint_dir.is_dir() or not any(checkpoint_dir.iterdir()):
        return None, "no checkpoint in {dir}: starting fresh".format(dir=checkpoint_dir)
    marker = checkpoint_dir / FINGERPRINT
    old = json.loads(marker.read_text()) if marker.is_file() else {}
    if resume == "never":
        why = "train.resume=never: discarding the checkpoints in {dir} and starting fresh"
    elif old.get("run_id") != run["run_id"]:
        changed = [k for k, v in run["parts"].items() if (old.get("parts") or {}).get(k) != v] or ["unknown"]
        why = "discarding the checkpoints in {dir} of an earlier run (changed: " + ", ".join(changed) + "); starting fresh"
    else:
        complete = _complete_checkpoints(checkpoint_dir, clean)
        if complete:
            step, path = complete[-1]
            return str(path), f"resuming this very run from {path} (step {step})"
        return None, f"no complete checkpoint of this run in {checkpoint_dir}: starting fresh"
    if clean:
        shutil.rmtree(checkpoint_dir)
    return None, why.format(dir=checkpoint_dir)
