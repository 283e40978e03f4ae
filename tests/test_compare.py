"""`notelm compare`: rows from `dvc exp show --json`, and the command over two real experiments in a tiny repo."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from notelm import cli
from notelm.compare import (
    compare_rows,
    exp_show,
    iter_runs,
    radar_chart,
    to_csv,
    to_markdown,
)
from notelm.core.errors import NoteLMError


def scores(rouge_l: float, f1: float) -> dict:
    block = {}
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"):
        v = f1 if key.startswith("bertscore") else rouge_l
        block.update({key: v, f"{key}_ci_low": v - 0.01, f"{key}_ci_high": v + 0.01})
    return block


def detail(fine: float, encoder: str = "minilm") -> dict:
    """A detail eval.json of one run."""
    return {"models": {"pretrained": scores(0.1, 0.8), "finetuned": scores(fine, 0.85)},
            "baselines": {"retrieval": scores(0.2, 0.82)}, "differences": {},
            "bertscore": {"model": encoder, "layer": 6}, "bootstrap": {"clusters": 5}, "n_examples": 5}


def run_data(model: str, fine: float, method: str | None = None, encoder: str = "minilm") -> dict:
    """The `data` of one run as `dvc exp show --json` prints it, plus (under `_detail`) what git holds for it."""
    return {
        "rev": "x", "timestamp": None,
        "params": {"params.yaml": {"data": {"model": model,
                                            "train": {"method": method}, "data": {"fraction": 1.0}}}},
        "metrics": {}, "deps": {}, "outs": {}, "meta": {}, "_detail": detail(fine, encoder),
    }


def read(run: dict) -> dict | None:
    """Stands for `git show <rev>:metrics/detail/eval.json`."""
    return run["data"].get("_detail")


def exp_show_fixture() -> list[dict]:
    """Workspace (same results as e2), the main baseline, experiments e1, e2 and a queued q1."""
    exp = lambda name, data, state=None: {  # noqa: E731
        "revs": [{"rev": f"{name}0000000", "name": name, "data": data, "error": None, "experiments": None}],
        "executor": {"state": state} if state else None, "name": name,
    }
    return [
        {"rev": "workspace", "name": None, "data": run_data("distilgpt2", 0.4, "lora"), "error": None, "experiments": None},
        {"rev": "abcdef1234", "name": "main", "data": run_data("distilgpt2", 0.3), "error": None, "experiments": [
            exp("e2", run_data("distilgpt2", 0.4, "lora")),
            exp("e1", run_data("qwen3-0.6b", 0.5)),
            exp("q1", {"params": {}, "metrics": {}}, state="queued"),
        ]},
    ]


def test_iter_runs_names_every_run():
    runs = iter_runs(exp_show_fixture())
    assert [(r["name"], r["rev"], r["state"]) for r in runs] == [
        ("workspace", "workspace", None), ("main", "abcdef1", None), ("e2", "e200000", None),
        ("e1", "e100000", None), ("q1", "q100000", "queued")]


def test_rows_merge_identical_results_and_group_by_variant():
    rows, skipped = compare_rows(exp_show_fixture(), read)
    got = [(r["variant"], r["model"], r["method"], r["runs"], r["rougeL"]) for r in rows]
    assert got == [
        ("pretrained", "distilgpt2", "", "workspace, main, e2", 0.1),
        ("pretrained", "qwen3-0.6b", "", "e1", 0.1),
        ("finetuned", "distilgpt2", "lora", "workspace, e2", 0.4),
        ("finetuned", "distilgpt2", "full", "main", 0.3),
        ("finetuned", "qwen3-0.6b", "full", "e1", 0.5),
        ("baseline:retrieval", "", "", "workspace, main, e2, e1", 0.2),
    ]
    assert skipped == ["q1 (queued)"]
    assert rows[2]["bertscore_f1_ci_low"] == pytest.approx(0.84) and rows[2]["encoder"] == "minilm@6"


def test_markdown_and_csv_carry_every_row():
    rows, skipped = compare_rows(exp_show_fixture(), read)
    md = to_markdown(rows, skipped)
    assert md.splitlines()[0].startswith("| Variant | Model | Method | Fraction | Runs | rouge1 |")
    assert "| Fine-tuned | qwen3-0.6b | full | 1.0 | e1 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.8500 | 0.8500 | 0.8500 |" \
        in md
    assert "Skipped (no metrics): q1 (queued)." in md and "WARNING" not in md
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(table) == len(rows) and table[0]["rougeL_ci_high"] == "0.11" and table[0]["fraction"] == ""


def test_runs_that_differ_only_in_their_seed_fold_into_mean_and_sd():
    def seeded(seed: int, fine: float) -> dict:
        data = run_data("smollm2", fine)
        data["params"]["params.yaml"]["data"]["train"]["seed"] = seed
        return data

    exp = lambda name, data: {"revs": [{"rev": f"{name}0000000", "name": name, "data": data, "error": None}],  # noqa: E731
                              "executor": None, "name": name}
    runs = [{"rev": "abcdef1234", "name": "main", "data": seeded(42, 0.40), "error": None, "experiments": [
        exp("s1", seeded(1, 0.44)), exp("s2", seeded(2, 0.50)), exp("lr", run_data("smollm2", 0.9, method="lora"))]}]
    rows, _ = compare_rows(runs, read)
    fine = [r for r in rows if r["variant"] == "finetuned"]
    assert len(fine) == 2  # the three seeds in one row, the LoRA run (another config) in its own
    folded = next(r for r in fine if r["seeds"] == [1, 2, 42])
    assert folded["rougeL"] == pytest.approx(np.mean([0.40, 0.44, 0.50]))
    assert folded["rougeL_sd"] == pytest.approx(np.std([0.40, 0.44, 0.50], ddof=1))
    assert folded["runs"] == "main, s1, s2" and folded["rougeL_ci_low"] is None
    md = to_markdown(rows, [])
    assert f"| Fine-tuned | smollm2-135m | full | 1.0 | main, s1, s2 (seeds 1, 2, 42) | {np.mean([0.4, 0.44, 0.5]):.4f} ± " in md
    assert "1 2 42" in to_csv(rows)
    radar_chart(rows, io.BytesIO())  # the folded row is drawn with its band


def test_different_encoders_are_flagged():
    data = exp_show_fixture()
    data[1]["experiments"][1]["revs"][0]["data"] = run_data("qwen3-0.6b", 0.5, encoder="roberta-large")
    rows, skipped = compare_rows(data, read)
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
os.makedirs("metrics/detail", exist_ok=True)
json.dump({"models": {"pretrained": dict.fromkeys(keys, 0.1), "finetuned": dict.fromkeys(keys, 0.1 * epochs)},
           "bertscore": {"model": "m", "layer": 6}, "bootstrap": {"clusters": 3}, "n_examples": 3},
          open("metrics/detail/eval.json", "w"))
"""
STAGE = """stages:
  evaluate:
    cmd: {python} make_metrics.py
    deps: [make_metrics.py]
    params: [model, train]
    outs:
    - metrics/detail/eval.json:
        cache: false
"""


@pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None, reason="needs dvc and git")
def test_compare_over_two_experiments_prints_the_table(tmp_path, monkeypatch, capsys):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"

    (tmp_path / "params.yaml").write_text("model: tiny\nmodels:\n  tiny: {source: x, method: full}\ntrain:\n  epochs: 1\n")
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

    ratings = tmp_path / "arena.jsonl"  # a rater's blind votes: the leaderboard comes along
    ratings.write_text("".join(json.dumps({"model_a": a, "model_b": b, "vote": "A", "prompt": f"p{i}", "blind": True,
                                           "rater": "r1"}) + "\n" for i, (a, b) in enumerate([("x", "y")] * 3)))
    assert cli.main(["compare", "--ratings", str(ratings), "--resample", "rater"]) == 0
    out = capsys.readouterr().out
    assert "## Arena leaderboard" in out and "resampling raters" in out and "| 1 | x |" in out
    assert "## Arena leaderboard" in (tmp_path / "compare" / "compare.md").read_text()


@pytest.mark.skipif(shutil.which("dvc") is None, reason="needs dvc")
def test_exp_show_outside_a_repository_is_a_clear_error(tmp_path):
    with pytest.raises(NoteLMError, match="dvc exp show --json` failed"):
        exp_show(cwd=tmp_path)


def test_paired_runs_give_a_clustered_difference_on_the_same_notes(monkeypatch):
    from notelm import compare as cmp

    rng = np.random.default_rng(0)
    base = {f"n{i}": (i % 6, rng.random() * 0.5) for i in range(30)}  # six patients, five notes each
    tables = {
        "clean": [{"note_id": n, "subject_id": str(p), "variant": "finetuned", **dict.fromkeys(HEADLINE_KEYS, f"{v:.6f}"),
                   "nll_bits": "100", "bytes": "200"} for n, (p, v) in base.items()],
        "leaky": [{"note_id": n, "subject_id": str(p), "variant": "finetuned",
                   **dict.fromkeys(HEADLINE_KEYS, f"{v + 0.05:.6f}"), "nll_bits": "60", "bytes": "200"}
                  for n, (p, v) in base.items()],
        "other": [{"note_id": "x", "subject_id": "1", "variant": "finetuned", **dict.fromkeys(HEADLINE_KEYS, "0.1")}],
    }
    monkeypatch.setattr(cmp, "per_example_at", lambda run: tables[run["name"]])
    shown = [{"rev": "abc1234567", "name": "main", "data": {}, "experiments": [
        {"revs": [{"rev": f"{n}0000000", "name": n, "data": {}}], "executor": None, "name": n} for n in tables]}]
    text = cmp.paired_runs(shown, "clean", "leaky", samples=500)
    assert "over the same 30 test notes, resampling their 6 patients" in text
    assert "| rougeL | " in text and "+0.0500 [+0.0500, +0.0500] | better |" in text
    assert "| Bits per byte | 0.5000 | 0.3000 | -0.2000 [-0.2000, -0.2000] | better |" in text  # lower: better
    with pytest.raises(cmp.NoteLMError, match="scored different test notes"):
        cmp.paired_runs(shown, "clean", "other", samples=10)
    with pytest.raises(cmp.NoteLMError, match="no run named nope"):
        cmp.paired_runs(shown, "clean", "nope")


HEADLINE_KEYS = ["rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"]


def test_paired_columns_leave_out_the_fact_classes_an_older_run_did_not_sort_into():
    from notelm.compare import _paired_columns

    old = {"rougeL": "0.4", "facts": "4", "facts_matched": "2", "facts_contradicted": "1", "facts_carried": "1",
           "facts_invented": "0"}  # before unsupported and new values were told apart
    new = {"rougeL": "0.5", "facts": "4", "facts_matched": "2", "facts_contradicted": "0", "facts_carried": "1",
           "facts_new_value": "1", "facts_unsupported": "0", "facts_unsupported_negative": "0", "fact_errors": "1"}
    columns = _paired_columns(old, new)
    assert {"rougeL", "facts", "facts_matched", "matched_fact_rate", "contradicted_fact_rate"} <= set(columns)
    assert not {"invented_fact_rate", "fact_error_rate", "fact_errors", "new_value_fact_rate"} & set(columns)
    assert {"invented_fact_rate", "fact_errors"} <= set(_paired_columns(new, new))
