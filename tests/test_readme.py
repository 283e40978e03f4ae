"""readme.py: every generated block of README and docs is what its committed file gives, the README stays short,
benchmark tables come only from result files, and no relative link or anchor is broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notelm import readme

REPO = Path(__file__).resolve().parents[1]
README_LINES = 200  # the README is an entrance, the rest lives in docs/


def blocks(root: Path = REPO) -> dict[str, tuple[str, str]]:
    """block name -> (page, its text) for every generated block of README and docs."""
    found = {}
    for page in readme.pages(root):
        for match in readme.BLOCK.finditer(page.read_text(encoding="utf-8")):
            body = match.group(0)[len(match.group(1)):-len(match.group(3))]
            found[match.group("name")] = (str(page.relative_to(root)), body.removesuffix("\n"))
    return found


def test_every_generated_block_is_what_the_committed_files_give():
    for name, (page, body) in blocks().items():
        assert body == readme.render(name, REPO), f"{page}: run `python -m notelm.readme` to regenerate {name}"
    assert readme.main(["--check"], REPO) == 0


def test_every_block_and_every_benchmark_result_has_its_place():
    found = blocks()
    assert set(readme.BLOCKS) <= set(found), f"blocks no page shows: {set(readme.BLOCKS) - set(found)}"
    results = {p.stem for p in (REPO / readme.RESULTS).glob("*.json")} - {Path(readme.REPRODUCE).stem}
    shown = {name.removeprefix("bench:") for name, (page, _) in found.items() if name.startswith("bench:")}
    assert results <= shown, f"result files docs/benchmarks.md does not show: {results - shown}"
    assert all(found[f"bench:{n}"][0] == "docs/benchmarks.md" for n in shown)
    scripts = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"limits", "results"}
    assert {n.partition(".")[0] for n in shown} <= scripts, f"tables of no benchmark script: {shown}"


def test_a_benchmark_table_is_its_result_file_and_absent_without_one(tmp_path):
    (tmp_path / readme.RESULTS).mkdir(parents=True)
    assert readme.render("bench:x", tmp_path).startswith("Not measured yet: `python benchmarks/x.py`")
    assert "|" not in readme.render("bench:x", tmp_path)  # no row without a result file
    assert "`python benchmarks/x.py --profile` writes" in readme.render("bench:x.profile", tmp_path)
    machine = {"cpu": "CPU X", "cores": 2, "flags": ["avx512_bf16"], "gpu": None, "torch": "2.13"}
    (tmp_path / readme.RESULTS / "x.json").write_text(json.dumps({
        "command": "python benchmarks/x.py", "date": "2026-12-07", "machine": machine, "gemm_gflops": {"fp32": 220.0},
        "columns": ["a", "b"], "rows": [["1", "2"]], "notes": ["Target met."]}))
    assert readme.render("bench:x", tmp_path) == (
        "`python benchmarks/x.py`, 2026-12-07, on CPU X, 2 cores, flags avx512_bf16, torch 2.13; same run: fp32 GEMM "
        "220 GFLOP/s.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nTarget met.")


def test_the_readme_fits_on_a_screen_or_so():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= README_LINES


def test_no_relative_link_or_anchor_is_broken():
    assert readme.broken_links(REPO) == []


def test_a_broken_link_and_a_stale_or_unknown_block_are_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A page\n\n## The `x` knob (y)\n[ok](#the-x-knob-y) [bad](#nope) "
                                        "[gone](b.md) [up](../README.md#intro) [web](https://example.org)\n")
    (tmp_path / "README.md").write_text("# Intro\n[a](docs/a.md#a-page)\n<!-- notelm:bench:x -->\nold\n"
                                        "<!-- /notelm:bench:x -->\n")
    assert readme.broken_links(tmp_path) == ["docs/a.md: #nope", "docs/a.md: b.md"]
    assert readme.main(["--check"], tmp_path) == 1 and "old" in (tmp_path / "README.md").read_text()
    readme.main([], tmp_path)
    assert "Not measured yet" in (tmp_path / "README.md").read_text()
    with pytest.raises(readme.NoteLMError, match="names no generated block"):
        readme.update("<!-- notelm:nothing -->\n<!-- /notelm:nothing -->", tmp_path)


def test_columns_count_headline_values_params_read_and_dependency_paths(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: x\n    deps: [src/a.py, data]\n    params: [train, model]\n"
        "    metrics:\n    - m.json:\n        cache: false\n  b:\n    cmd: y\n    deps: [data]\n    params: [eval.seed]\n")
    (tmp_path / "params.yaml").write_text("model: m\ntrain: {lr: 1, fail_on: {x: 1, y: null}, empty: {}}\n"
                                          "eval: {seed: 0, other: 1}\n")
    (tmp_path / "m.json").write_text(json.dumps({"a": {"b": 1, "c": "worse"}, "d": 2}))
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    assert readme.columns(tmp_path) == (  # params: train.lr, train.fail_on.x, train.fail_on.y, model, eval.seed
        "The headline files hold 3 values (`m.json` 3); the stages read 5 params and list 2 dependency paths, so "
        "`dvc exp show --csv` of the committed run has 10 columns of them besides its own few about each run. "
        "`dvc.lock` has 2 lines.")
