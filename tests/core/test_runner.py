"""core/runner.py: a stage's `Paths` dataclass is its command line: defaults, required inputs, lists, help."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from notelm.core import runner


@dataclass(frozen=True)
class Paths:
    model_dir: str
    """Checkpoint to read."""
    inputs: tuple[str, ...] = ("a.jsonl", "b.jsonl")
    """Files to read."""
    out: str = "out.json"
    """Where to write."""
    base: str | None = None
    """Derived from params when not given."""


def test_the_parser_is_built_from_paths():
    p = runner.parser("demo", "The demo stage.", Paths)
    got = runner.paths_from(p.parse_args(["--model-dir", "m", "--inputs", "x", "y"]), Paths)
    assert got == Paths("m", ("x", "y"), "out.json", None)
    assert runner.paths_from(p.parse_args(["--model-dir", "m"]), Paths).inputs == ("a.jsonl", "b.jsonl")
    with pytest.raises(SystemExit):
        p.parse_args([])  # --model-dir is required
    text = " ".join(p.format_help().split())
    assert "Where to write. (default: out.json)" in text and "Files to read. (default: a.jsonl b.jsonl)" in text


def test_main_runs_the_stage_and_a_user_error_exits_1(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("x: 1\n")
    seen = []
    assert runner.main("demo", "The demo.", Paths, lambda pr, pa: seen.append((pr, pa)) or {"ok": 1},
                       ["--model-dir", "m", "--params", str(params)]) == 0
    assert seen == [({"x": 1}, Paths("m"))] and '"ok": 1' in capsys.readouterr().out
    assert runner.main("demo", "The demo.", Paths, lambda pr, pa: None, ["--model-dir", "m", "--params", "nope"]) == 1
    assert "notelm demo: error: nope: params file not found" in capsys.readouterr().err
