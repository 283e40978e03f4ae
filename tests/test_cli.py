"""cli.py: `notelm` lists every stage module with its `Paths` options, and hands a stage its own options."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from notelm import cli
from tests.test_contract import dvc_stages, stage_module


def test_the_stage_list_is_the_stage_modules_dvc_yaml_runs():
    assert set(cli.stage_modules()) == {stage_module(s["cmd"]).rsplit(".", 1)[1] for s in dvc_stages().values()}


def test_notelm_help_shows_every_stage_with_its_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["-h"])
    text = " ".join(capsys.readouterr().out.split())
    for name in cli.stage_modules():
        paths = importlib.import_module(f"notelm.stages.{name}").Paths
        for f in dataclasses.fields(paths):
            assert f"--{f.name.replace('_', '-')}" in text.replace("-- ", "--"), (name, f.name)
    assert "notelm base_model -h for the options" in text


def test_a_stage_help_shows_its_path_options_and_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--per-example PER_EXAMPLE" in text and "(default: eval/per_example.csv)" in text
    assert "--generations GENERATIONS [GENERATIONS ...]" in text


def test_notelm_params_prints_a_section(capsys):
    assert cli.main(["params", "report"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("report.n_examples_shown = 3\n") and "PNG resolution." in out


def test_notelm_facts_prints_precision_and_recall_of_both_labelled_sets_and_the_misses(capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the labelled lines are committed with the code
    assert cli.main(["facts", "--misses"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Facts | development P | development R | held-out P | held-out R |")
    assert "| overall |" in out and "- held-out lines: " in out
    assert "labels/fact_lines_heldout.jsonl id " in out  # a line it gets wrong, with what it missed


@pytest.mark.parametrize("argv, message", [
    (["grid", "--gpu", "a100"], "--gpu only with --slurm"),
    (["grid", "--queue", "--sbatch=--time=1:00", "--dry-run"], "--sbatch, --dry-run only with --slurm"),
    (["grid", "status", "--outputs"], "--outputs only with `collect`"),
])
def test_notelm_grid_refuses_options_that_would_be_ignored(capsys, argv, message):
    assert cli.main(argv) == 1
    assert message in capsys.readouterr().err


def test_notelm_grid_status_before_any_submission_says_so(capsys, tmp_path):
    assert cli.main(["grid", "status", "--dir", str(tmp_path)]) == 1
    assert f"{tmp_path}: no grid was submitted from here" in capsys.readouterr().err


def test_notelm_grid_prints_a_matrix_s_points_as_dvc_experiments(capsys, tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("matrix: {model: [smollm2, gemma3]}\nset: {train.epochs: 1}\n")
    assert cli.main(["grid", "--grid", str(grid)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "dvc exp run -n smollm2 -S model=smollm2 -S train.epochs=1",
        "dvc exp run -n gemma3 -S model=gemma3 -S train.epochs=1"]
