"""The train stage as a real process: killed with SIGKILL and resumed; two processes under `accelerate launch`."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.core.paths import SOURCE_RECORD
from notelm.stages.train import train

SRC = Path(__file__).resolve().parents[2] / "src"
ROW = {"family": "llama", "method": "full", "lora_targets": ["q_proj", "v_proj"]}


def project(root: Path, model_dir: Path, **train_params) -> Path:
    """A working directory for `notelm train`: params.yaml selecting a tiny model, its base checkpoint, data."""
    shutil.copytree(model_dir, root / "models/base/tiny")
    row = {"name": "tiny", "source": str(model_dir), **ROW}  # as the base_model stage records it
    (root / "models/base/tiny" / SOURCE_RECORD).write_text(json.dumps({"model": "tiny", "row": row}))
    params = {"model": "tiny", "train": {"precision": "fp32", "learning_rate": 1e-3, **train_params}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def notelm(*args: str) -> list[str]:
    return [sys.executable, "-m", "notelm.cli", *args]  # `notelm train` = python -m notelm.stages.train


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
       "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def complete_checkpoints(root: Path) -> list[Path]:
    return [p for p in (root / "models/checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").is_file()]


def test_killed_run_resumes_from_its_last_checkpoint_and_ends_like_an_uninterrupted_one(
        prepared, tiny_model_factory, tmp_path_factory, monkeypatch):
    knobs = dict(epochs=1, batch_size=4, max_length=16, save_steps=10, logging_steps=5)
    root = project(prepared, tiny_model_factory("llama"), **knobs)
    previous = root / "models/finetuned"
    previous.mkdir(parents=True)
    (previous / "config.json").write_text("{}")  # stands for the last run's output

    with (root / "killed.log").open("w") as log:
        proc = subprocess.Popen(notelm("train"), cwd=root, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while not complete_checkpoints(root):
            assert proc.poll() is None, (root / "killed.log").read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in previous.iterdir()] == ["config.json"]  # the previous output, untouched
    assert not list(previous.parent.glob(".finetuned.*"))  # no half-written replacement left behind

    rerun = subprocess.run(notelm("train"), cwd=root, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "train: resuming this very run from models/checkpoints/checkpoint-" in rerun.stderr
    resumed = json.loads((previous / "notelm_train.json").read_text())
    assert json.loads((root / "logs/train.json").read_text())["resumed_from"] is not None

    # the same run, never interrupted, in a fresh directory (in-process)
    other = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(root / "data", other / "data")
    monkeypatch.chdir(other)
    spec = ModelRow(name="tiny", source=str(tiny_model_factory("llama")), **ROW)
    expected = train(TrainParams(precision="fp32", learning_rate=1e-3, **knobs), spec, tiny_model_factory("llama"))
    assert resumed["steps"] == expected["steps"] > 2 * knobs["save_steps"]
    assert math.isclose(resumed["train_loss"], expected["train_loss"], rel_tol=1e-4)  # the whole run's, not the rest's
    a, b = load_file(previous / "model.safetensors"), load_file(other / "models/finetuned/model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # the loss curve of the resumed run is whole: the steps before the kill are there, none twice
    assert logged_steps(root / "dvclive") == logged_steps(other / "dvclive")
    assert logged_steps(root / "dvclive")[:2] == [5, 10]


def logged_steps(live_dir: Path) -> list[int]:
    """The training steps of the train-loss curve dvclive holds."""
    rows = (live_dir / "plots/metrics/loss.tsv").read_text().splitlines()
    column = rows[0].split("\t").index("step")
    return [int(row.split("\t")[column]) for row in rows[1:]]


def test_two_cpu_processes_under_accelerate_launch(prepared, tiny_model_factory):
    root = project(prepared, tiny_model_factory("llama"), max_steps=4, batch_size=2, max_length=16, logging_steps=1)
    # accelerate's --multi_gpu launcher (torchrun) with no GPU visible: the Trainer runs DDP on the CPU over gloo
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "notelm.stages.train"]
    env = {**ENV, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(launch, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((root / "models/finetuned/notelm_train.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert proc.stderr.count("train: done") == 1  # only the main process saves
    assert json.loads((root / "dvclive/metrics.json").read_text())
    assert not list((root / "models").glob(".*"))  # no temporary directories left


def test_two_cpu_processes_generate_the_file_one_process_writes(prepared, tiny_model_factory):
    """`accelerate launch` shards the test prompts over 2 CPU processes (gloo); the main one writes the file."""
    root = project(prepared, tiny_model_factory("llama"), max_steps=1)
    model = str(tiny_model_factory("llama"))
    args = ["--model-dir", model, "--test", str(root / "data/prepared/test.jsonl")]
    one = subprocess.run([*notelm("generate"), *args, "--out", "one.jsonl"], cwd=root, env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "notelm.cli",
              "generate", *args, "--out", "two.jsonl"]
    env = {**ENV, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    two = subprocess.run(launch, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert "2 process(es)" in two.stderr and two.stderr.count("-> two.jsonl") == 1  # the main process writes, once
    assert (root / "two.jsonl").read_bytes() == (root / "one.jsonl").read_bytes()
    assert len((root / "one.jsonl").read_text().splitlines()) > 2
