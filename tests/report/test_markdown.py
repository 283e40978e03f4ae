"""report/markdown.py: one way to write a number or a missing value, intervals, safe cell text, and tables."""

from __future__ import annotations

from notelm.report import markdown


def test_text_helpers():
    assert markdown.truncate("one two three four", 9) == "one two …"
    assert markdown.tail("one two three four", 10) == "… four"
    assert markdown.md_text("a|b *c*\n[**X**]") == "a\\|b \\*c\\* \\[\\*\\*X\\*\\*\\]"
    block = {"x": 0.1, "x_ci_low": -0.05, "x_ci_high": 0.2}
    assert markdown.fmt_ci(block, "x", signed=True) == "+0.1000 [-0.0500, +0.2000]"


def test_fmt_writes_numbers_and_a_missing_value_one_way():
    assert markdown.fmt(None) == markdown.fmt(None, 1) == markdown.fmt(None, None) == markdown.MISSING == "–"
    assert markdown.fmt(0.123456) == "0.1235" and markdown.fmt(0.123456, 3) == "0.123" and markdown.fmt(2.0, 1) == "2.0"
    assert markdown.fmt(7) == markdown.fmt(7, 1) == "7" and markdown.fmt(True) == "True"  # ints as they are
    assert markdown.fmt(0.05, None) == "0.05" and markdown.fmt("x") == "x"  # digits None: as str writes it


def test_fmt_ci_without_an_interval_or_the_metric():
    assert markdown.fmt_ci({"x": 0.5}, "x") == "0.5000"
    assert markdown.fmt_ci({"x": 0.5}, "y") == markdown.fmt_ci(None, "x") == "–"
    assert markdown.fmt_ci({"x": 1.25, "x_ci_low": 1.0, "x_ci_high": 1.5}, "x", digits=1) == "1.2 [1.0, 1.5]"


def test_table_lines_and_alignment():
    assert markdown.table(["a", "b"], [["1", "2"], ["3", "4"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]
    assert markdown.table(["m", "x", "y", "z"], [], "lrr")[1] == "|---|---:|---:|---|"  # unnamed columns: left
