"""reproduce.py: the workspace's metrics against the committed run — verdicts, moves weighed by their interval."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from notelm import machine, reproduce

HEADLINE = {"finetuned": {"rougeL": 0.40}, "finetuned_vs_best_baseline": {"rougeL": -0.10, "rougeL_verdict": "worse",
                                                                         "rougeL_baseline": "aligned_copy"}}
DETAIL = {"models": {"finetuned": {"rougeL": 0.40, "rougeL_ci_low": 0.36, "rougeL_ci_high": 0.44}},
          "differences": {"finetuned-copy_forward": {"rouge1": -0.03, "rouge1_ci_low": -0.07, "rouge1_ci_high": 0.01,
                                                     "rouge1_verdict": "not distinguishable"}}}
FACTS = {"cpu": "Test CPU", "flags": ["avx2"], "cores": 2, "gpu": None, "precision_auto": "fp32", "python": "3.11",
         "torch": "2.13.0", "transformers": "5"}


def _write(root: Path, path: str, obj) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(json.dumps(obj), encoding="utf-8")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A committed run: dvc.yaml naming its headline file, the headline and detail metrics, the Trainer's args."""
    (tmp_path / "dvc.yaml").write_text("stages:\n  evaluate:\n    cmd: x\n    metrics:\n    - metrics/eval.json:\n"
                                       "        cache: false\n    outs:\n    - metrics/detail/eval.json\n")
    _write(tmp_path, "metrics/eval.json", HEADLINE)
    _write(tmp_path, "metrics/detail/eval.json", DETAIL)
    (tmp_path / "dvclive").mkdir()
    (tmp_path / "dvclive/params.yaml").write_text("bf16: false\nfp16: false\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "run"], cwd=tmp_path, check=True)
    monkeypatch.setattr(machine, "facts", lambda: FACTS)
    return tmp_path


def test_an_unchanged_workspace_reproduces(repo, capsys):
    assert reproduce.main(repo, "HEAD", True, None, "notelm reproduce --check") == 0
    out = capsys.readouterr().out
    assert "values: 0 of 8 moved" in out and "headline verdicts: 2 of 2 equal" in out and "REPRODUCED" in out


def test_a_changed_detail_verdict_is_listed_as_machine_dependent_and_moves_are_weighed(repo, capsys):
    detail = json.loads(json.dumps(DETAIL))
    detail["differences"]["finetuned-copy_forward"].update(rouge1=-0.08, rouge1_verdict="worse")
    detail["models"]["finetuned"]["rougeL"] = 0.39
    _write(repo, "metrics/detail/eval.json", detail)
    (repo / "dvclive/params.yaml").write_text("bf16: true\nfp16: false\n")
    save = repo / "out.json"
    assert reproduce.main(repo, "HEAD", True, str(save), "notelm reproduce --check") == 0
    out = capsys.readouterr().out
    assert "committed run fp32, this run bf16" in out and "expected to move" in out
    assert ("detail verdicts: 0 of 1 equal; 1 changed (claims that depend on the machine):\n    metrics/detail/eval.json "
            "differences.finetuned-copy_forward.rouge1_verdict: not distinguishable → worse") in out
    result = json.loads(save.read_text())
    assert result["moved"] == 2 and result["headline_changed"] == [] and result["machine"] == FACTS
    first, second = result["largest"]  # -0.03 → -0.08: 0.05 over a half-width of 0.04; 0.40 → 0.39: 0.01 over 0.04
    assert (first["key"], second["key"]) == ("differences.finetuned-copy_forward.rouge1", "models.finetuned.rougeL")
    assert first["half_widths"] == pytest.approx(1.25) and second["half_widths"] == pytest.approx(0.25)


def test_a_changed_headline_verdict_fails_the_check(repo, capsys):
    head = json.loads(json.dumps(HEADLINE))
    head["finetuned_vs_best_baseline"].update(rougeL_verdict="not distinguishable", rougeL_baseline="copy_forward")
    _write(repo, "metrics/eval.json", head)
    assert reproduce.main(repo, "HEAD", False, None, "notelm reproduce") == 0  # without --check: report only
    assert reproduce.main(repo, "HEAD", True, None, "notelm reproduce --check") == 1
    out = capsys.readouterr().out
    assert "finetuned_vs_best_baseline.rougeL_verdict: worse → not distinguishable" in out
    assert "finetuned_vs_best_baseline.rougeL_baseline: aligned_copy → copy_forward" in out
    assert out.rstrip().endswith("NOT REPRODUCED: a headline verdict changed")


def test_a_missing_file_is_named_and_no_repository_is_an_error(repo, tmp_path_factory, capsys):
    (repo / "metrics/detail/eval.json").unlink()
    reproduce.main(repo, "HEAD", True, None, "x")
    assert "not compared: metrics/detail/eval.json (not in the workspace)" in capsys.readouterr().out
    with pytest.raises(reproduce.NoteLMError, match="is no git commit"):
        reproduce.compare(tmp_path_factory.mktemp("empty"), "HEAD")
