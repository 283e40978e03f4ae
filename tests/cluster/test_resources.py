"""cluster/resources.py: each point's Slurm request from the memory plan."""

from __future__ import annotations

import pytest

from notelm.cluster.points import Point
from notelm.cluster.resources import TooBig, for_point
from notelm.config.models import model_row
from notelm.config.train import TrainParams
from notelm.core.loader import load_params, load_section
from notelm.plan import parse_gpu
from notelm.training.plan import GB, estimate, model_shape


@pytest.fixture
def params():
    return load_params("params.yaml")


def test_a_cpu_point_asks_for_the_plan_s_estimate_rounded_up(params, monkeypatch):
    monkeypatch.setattr("notelm.cluster.resources.resolve_precision", lambda _: "fp32")
    request = for_point(Point("p", {"model": "gemma3", "train.batch_size": 2}), params)
    row, cfg = model_row(params, "gemma3"), load_section(TrainParams, {**params, "train": {**params["train"],
                                                                                          "batch_size": 2}})
    need = estimate(model_shape(row), "full", 2, cfg.block_length(row), False, cfg.lora_r, len(row.lora_targets),
                    cfg.loss_chunk_tokens, cfg.checkpointing("full"))["total"]
    assert request.mem_gb == int(-(-need // GB)) and request.gpus == 0
    assert request.sbatch() == [f"--mem={request.mem_gb}G"]
    assert f"gemma3-270m full, batch 2 × {cfg.block_length(row)}" in request.why


def test_a_bigger_model_or_batch_asks_for_more(params):
    small = for_point(Point("a", {"model": "smollm2"}), params)
    big = for_point(Point("b", {"model": "gpt2-xl", "train.method": "full"}), params)
    more = for_point(Point("c", {"model": "smollm2", "train.batch_size": 64}), params)
    assert small.mem_gb < more.mem_gb and small.mem_gb < big.mem_gb


def test_on_a_gpu_cluster_a_point_takes_one_card_and_host_memory_for_its_weights(params):
    request = for_point(Point("q", {"model": "qwen3", "train.method": "lora"}), params, parse_gpu("a100"))
    assert request.gpus == 1 and request.sbatch() == [f"--mem={request.mem_gb}G", "--gres=gpu:1"]
    assert request.mem_gb == int(-(-(1.1 * (4 * 596049920 + GB)) // GB))  # SLACK × (fp32 weights + runtime)


def test_a_point_no_single_card_holds_is_refused_with_the_fix(params):
    with pytest.raises(TooBig, match="mpt-7b full.*lower train.batch_size.*FSDP"):
        for_point(Point("big", {"model": "mpt-7b", "train.method": "full"}), params, parse_gpu("t4"))


def test_a_model_of_unknown_size_takes_the_cluster_s_default(params, monkeypatch):
    monkeypatch.setattr("notelm.cluster.resources.model_shape", lambda row, model_dir: None)
    assert for_point(Point("x", {}), params).sbatch() == []
    assert for_point(Point("x", {}), params, parse_gpu("h100")).sbatch() == ["--gres=gpu:1"]
