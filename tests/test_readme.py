"""readme.py: the README's result blocks are exactly what the committed metrics give (they cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from notelm import readme

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_blocks_are_what_the_committed_metrics_give():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for name in readme.BLOCKS:
        match = re.search(rf"<!-- notelm:{name} -->\n(.*?)\n<!-- /notelm:{name} -->", text, re.S)
        assert match, f"README.md has no <!-- notelm:{name} --> block"
        assert match.group(1) == readme.render(name, REPO), f"run `python -m notelm.readme` to regenerate {name}"


def test_update_rewrites_a_stale_block_and_leaves_the_rest(tmp_path):
    text = "intro\n<!-- notelm:results -->\nold numbers\n<!-- /notelm:results -->\noutro\n"
    new = readme.update(text, REPO)
    assert new.startswith("intro\n<!-- notelm:results -->\n| metric |") and new.endswith("<!-- /notelm:results -->\noutro\n")
    assert "old numbers" not in new and readme.update(new, REPO) == new
