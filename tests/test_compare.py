"""`notelm compare`: rows from `dvc exp show --json`, and the command over two real experiments in a tiny repo."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys

import pytest

from notelm import cli
from notelm.compare import compare_rows, exp_show, iter_runs, to_csv, to_markdown
from notelm.errors import NoteLMError


def scores(rouge_l: float, f1: float) -> dict:
    block = {}
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"):
        v = f1 if key.startswith("bertscore") else rouge_l
        block.update({key: v, f"{key}_ci_low": v - 0.01, f"{key}_ci_high": v + 0.01})
    return block


def run_data(model: str, fine: float, method: str | None = None, encoder: str = "minilm") -> dict:
    """The `data` of one run as `dvc exp show --json` prints it."""
    return {
        "rev": "x", "timestamp": None,
        "params": {"params.yaml": {"data": {"model": model, "models": {model: {"method": "full"}},
                                            "train": {"method": method}, "data": {"fraction": 1.0}}}},
        "metrics": {"metrics/eval.json": {"data": {
            "pretrained": scores(0.1, 0.8), "finetuned": scores(fine, 0.85),
            "baselines": {"retrieval": scores(0.2, 0.82)},
            "bertscore": {"model": encoder, "layer": 6}, "n_examples": 5,
        }}},
        "deps": {}, "outs": {}, "meta": {},
    }


def exp_show_fixture() -> list[dict]:
    """Workspace (same results as e2), the main baseline, experiments e1, e2 and a queued q1."""
    exp = lambda name, data, state=None: {  # noqa: E731
        "revs": [{"rev": f"{name}0000000", "name": name, "data": data, "error": None, "experiments": None}],
        "executor": {"state": state} if state else None, "name": name,
    }
    return [
        {"rev": "workspace", "name": None, "data": run_data("gpt2", 0.4, "lora"), "error": None, "experiments": None},
        {"rev": "abcdef1234", "name": "main", "data": run_data("gpt2", 0.3), "error": None, "experiments": [
            exp("e2", run_data("gpt2", 0.4, "lora")),
            exp("e1", run_data("qwen", 0.5)),
            exp("q1", {"params": {}, "metrics": {}}, state="queued"),
        ]},
    ]


def test_iter_runs_names_every_run():
    runs = iter_runs(exp_show_fixture())
    assert [(r["name"], r["rev"], r["state"]) for r in runs] == [
        ("workspace", "workspace", None), ("main", "abcdef1", None), ("e2", "e200000", None),
        ("e1", "e100000", None), ("q1", "q100000", "queued")]


def test_rows_merge_identical_results_and_group_by_variant():
    rows, skipped = compare_rows(exp_show_fixture())
    got = [(r["variant"], r["model"], r["method"], r["runs"], r["rougeL"]) for r in rows]
    assert got == [
        ("pretrained", "gpt2", "", "workspace, main, e2", 0.1),
        ("pretrained", "qwen", "", "e1", 0.1),
        ("finetuned", "gpt2", "lora", "workspace, e2", 0.4),
        ("finetuned", "gpt2", "full", "main", 0.3),
        ("finetuned", "qwen", "full", "e1", 0.5),
        ("baseline:retrieval", "", "", "workspace, main, e2, e1", 0.2),
    ]
    assert skipped == ["q1 (queued)"]
    assert rows[2]["bertscore_f1_ci_low"] == pytest.approx(0.84) and rows[2]["encoder"] == "minilm@6"


def test_markdown_and_csv_carry_every_row():
    rows, skipped = compare_rows(exp_show_fixture())
    md = to_markdown(rows, skipped)
    assert md.splitlines()[0].startswith("| Variant | Model | Method | Fraction | Runs | rouge1 |")
    assert "| Fine-tuned | qwen | full | 1.0 | e1 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.8500 | 0.8500 | 0.8500 |" \
        in md
    assert "Skipped (no metrics): q1 (queued)." in md and "WARNING" not in md
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(table) == len(rows) and table[0]["rougeL_ci_high"] == "0.11" and table[0]["fraction"] == ""


def test_different_encoders_are_flagged():
    data = exp_show_fixture()
    data[1]["experiments"][1]["revs"][0]["data"] = run_data("qwen", 0.5, encoder="roberta-large")
    rows, skipped = compare_rows(data)
    assert "different BERTScore encoders (minilm@6, roberta-large@6)" in to_markdown(rows, skipped)


def test_bad_saved_json_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "show.json").write_text('{"not": "a list"}')
    assert cli.main(["compare", "--from-json", str(tmp_path / "show.json"), "--out-dir", str(tmp_path / "o")]) == 1
    assert "show.json: expected the JSON list" in capsys.readouterr().err
    (tmp_path / "show.json").write_text("[]")
    assert cli.main(["compare", "--from-json", str(tmp_path / "show.json"), "--out-dir", str(tmp_path / "o")]) == 1
    assert "listed no runs" in capsys.readouterr().err


SCRIPT = """import json, os, yaml
epochs = yaml.safe_load(open("params.yaml"))["train"]["epochs"]
keys = ["rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"]
os.makedirs("metrics", exist_ok=True)
json.dump({"pretrained": dict.fromkeys(keys, 0.1), "finetuned": dict.fromkeys(keys, 0.1 * epochs),
           "bertscore": {"model": "m", "layer": 6}, "n_examples": 3}, open("metrics/eval.json", "w"))
"""
STAGE = """stages:
  evaluate:
    cmd: {python} make_metrics.py
    deps: [make_metrics.py]
    params: [model, train]
    metrics:
    - metrics/eval.json:
        cache: false
"""


@pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None, reason="needs dvc and git")
def test_compare_over_two_experiments_prints_the_table(tmp_path, monkeypatch, capsys):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"

    (tmp_path / "params.yaml").write_text("model: tiny\nmodels:\n  tiny: {method: full}\ntrain:\n  epochs: 1\n")
    (tmp_path / "dvc.yaml").write_text(STAGE.format(python=sys.executable))
    (tmp_path / "make_metrics.py").write_text(SCRIPT)
    sh("git", "init", "-q")
    sh("git", "config", "user.email", "ci@example.org")
    sh("git", "config", "user.name", "ci")
    sh("dvc", "init", "-q")
    sh("dvc", "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline")
    sh("dvc", "exp", "run", "-q", "-n", "two-epochs", "-S", "train.epochs=2")
    sh("dvc", "exp", "run", "-q", "-n", "three-epochs", "-S", "train.epochs=3")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")

    assert cli.main(["compare", "--all-branches"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("| Variant | Model |")
    assert any(line.startswith("| Fine-tuned | tiny | full | – |") and "three-epochs" in line and "| 0.3000 |" in line
               for line in lines)
    assert any("two-epochs" in line and "| 0.2000 |" in line for line in lines)
    assert any(line.startswith("| Pre-trained | tiny |") and "two-epochs" in line and "three-epochs" in line
               for line in lines)
    for name in ("compare.md", "compare.csv", "radar.png"):
        assert (tmp_path / "compare" / name).stat().st_size > 0


@pytest.mark.skipif(shutil.which("dvc") is None, reason="needs dvc")
def test_exp_show_outside_a_repository_is_a_clear_error(tmp_path):
    with pytest.raises(NoteLMError, match="dvc exp show --json` failed"):
        exp_show(cwd=tmp_path)
