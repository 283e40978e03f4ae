"""The Trainer glue (notelm.training.trainer): wall-clock keys, the whole-run loss, the TrainingArguments, dvclive history.

Loading per method is tested in tests/training/test_methods.py, the chunked-loss Trainer in tests/training/test_loss.py, and the whole of it
through the train stage in tests/stages/test_train.py."""

from __future__ import annotations

import json

from notelm.config.train import TrainParams
from notelm.training.trainer import buffers_returned_to_os, is_timing, training_args, whole_run_loss, write_loss_history


def test_wall_clock_keys_are_timing_and_losses_are_not():
    assert is_timing("train_runtime") and is_timing("eval_samples_per_second") and is_timing("train_steps_per_second")
    assert not is_timing("loss") and not is_timing("eval_loss") and not is_timing("learning_rate")


def test_whole_run_loss_weights_each_interval_by_its_steps():
    history = [{"loss": 2.0, "step": 5}, {"eval_loss": 9.0, "step": 5}, {"loss": 1.0, "step": 10},
               {"train_loss": 7.0, "train_runtime": 3.0, "step": 10}]
    assert whole_run_loss(history) == 1.5
    assert whole_run_loss([{"eval_loss": 1.0, "step": 0}]) is None and whole_run_loss([]) is None


def test_training_args_evaluate_and_save_per_epoch_or_every_save_steps(tmp_path):
    per_epoch = training_args(TrainParams(), tmp_path, "fp32")
    assert per_epoch.eval_strategy == "epoch" and per_epoch.save_strategy == "epoch"
    assert per_epoch.load_best_model_at_end and per_epoch.metric_for_best_model == "eval_loss"
    assert per_epoch.output_dir == str(tmp_path) and not per_epoch.bf16 and not per_epoch.fp16
    stepped = training_args(TrainParams(save_steps=7), tmp_path, "bf16")
    assert stepped.eval_strategy == "steps" and stepped.save_steps == 7 and stepped.eval_steps == 7 and stepped.bf16


def test_loss_history_leaves_out_wall_clock_figures_and_keeps_the_params(tmp_path):
    live = tmp_path / "dvclive"
    live.mkdir()
    (live / "params.yaml").write_text("learning_rate: 0.001\n")
    history = [{"loss": 2.0, "learning_rate": 0.001, "step": 1}, {"eval_loss": 1.5, "eval_runtime": 0.3, "step": 1},
               {"train_loss": 2.0, "train_runtime": 4.0, "train_samples_per_second": 9.0, "step": 1}]
    write_loss_history(live, history)
    metrics = json.loads((live / "metrics.json").read_text())
    assert metrics["train"]["loss"] == 2.0 and metrics["eval"]["loss"] == 1.5 and metrics["step"] == 1
    assert "runtime" not in metrics["train"] and "runtime" not in metrics["eval"]
    assert "samples_per_second" not in metrics["train"]
    assert (live / "params.yaml").read_text() == "learning_rate: 0.001\n"
    first = {p: p.read_bytes() for p in sorted(live.rglob("*")) if p.is_file()}
    write_loss_history(live, history)
    assert {p: p.read_bytes() for p in sorted(live.rglob("*")) if p.is_file()} == first


def test_buffers_returned_to_os_is_a_context_that_restores_nothing_visible():
    with buffers_returned_to_os():
        data = bytearray(1 << 20)
    assert len(data) == 1 << 20
