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
