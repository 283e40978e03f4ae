"""plan.py: the tables `notelm plan` prints (this machine, a named card, FSDP over several)."""

from __future__ import annotations

from pathlib import Path

import pytest

from notelm import plan as plan_tables
from notelm.config.models import model_rows
from notelm.config.train import TrainParams
from notelm.core.errors import NoteLMError
from notelm.core.loader import load_params
from notelm.training import plan
from notelm.training.plan import GB

CATALOGUE = Path(__file__).resolve().parents[1] / "configs/models.yaml"


def test_table_has_a_row_for_every_model_and_every_row_has_a_size():
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    text = plan_tables.table(params, CATALOGUE)
    for name in model_rows(CATALOGUE):
        [line] = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert "?" not in line, line
        assert line.rstrip(" |").endswith(("yes", "no"))


def test_a_named_card_or_a_size_is_understood():
    assert plan_tables.parse_gpu("24GB")[1] == 24 * GB and plan_tables.parse_gpu("80 gb")[1] == 80 * GB
    assert plan_tables.parse_gpu("T4")[1] == 15 * GB  # sold as 16 GB, 15 GiB usable
    with pytest.raises(NoteLMError, match=r"--gpu 'big'.*a size such as 24GB or one of t4, "):
        plan_tables.parse_gpu("big")


def test_gpu_plan_lists_every_row_with_the_largest_batch_that_fits(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no models/base/ here: sizes from the rows
    params = load_params(Path(__file__).parents[1] / "params.yaml")
    cfg = TrainParams(**params["train"])
    text = plan_tables.gpu_table(params, "24GB", catalogue=CATALOGUE)
    single, sharded = text.split("Full fine-tune sharded with FSDP")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in single.splitlines() if line.startswith("| ")}
    for name in [*model_rows(CATALOGUE), "mpt-7b", "gpt-neo-1.3b", "openelm-270m", "qwen3-1.7b", "dclm-7b", "bitnet-2b",
                 "wenzhong-gpt2-110m", "gpt2-chinese"]:
        assert name in rows, name
    assert rows["mpt-7b"].split(" | ")[2].startswith("no (batch 1 needs")  # full: no single card
    assert rows["mpt-7b"].split(" | ")[4].startswith(f"{cfg.batch_size} × 256")  # qlora fits
    row = model_rows(CATALOGUE)["gpt-neo-1.3b"]
    shape = plan.model_shape(row)
    fit = plan_tables.fitting(shape, "lora", cfg, 256, 2, 24 * GB)
    assert fit is not None and fit[2] <= 24 * GB
    assert "| gpt-neo-1.3b | 2 | " in sharded and "--config_file configs/accelerate/fsdp.yaml --num_processes 2" in text
    four = plan_tables.gpu_table(params, "24GB", gpus=4, catalogue=CATALOGUE)
    assert "| mpt-7b | 4 | no | does not fit |" in four  # 4 × 24 GB cannot hold a full fine-tune of 6.6 B


def test_the_fsdp_config_is_one_accelerate_launches():
    """The shipped accelerate config parses and turns into the FSDP environment of a launch (no GPU needed)."""
    from accelerate.commands.launch import (
        _validate_launch_command,
        launch_command_parser,
    )
    from accelerate.utils import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(Path(__file__).parents[1] / plan_tables.FSDP_CONFIG),
                                               "--num_processes", "2", "-m", "notelm.stages.train"])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    assert args.use_fsdp and args.num_processes == 2
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD"
    assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT" and env["FSDP_USE_ORIG_PARAMS"] == "true"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
