"""report/charts.py: the bars' rows and CSV, and every chart drawn as a PNG that a rerun repeats byte for byte."""

from __future__ import annotations

import csv

from notelm.config.names import HEADLINE
from notelm.report.charts import (
    bar_rows,
    plot_distributions,
    plot_loss,
    plot_metric_bars,
    plot_paired_diff,
    write_bar_csv,
)

PNG = b"\x89PNG\r\n\x1a\n"


def block(v: float) -> dict[str, float]:
    return {k: x for key in HEADLINE for k, x in ((key, v), (f"{key}_ci_low", v - 0.125), (f"{key}_ci_high", v + 0.125))}


def metrics() -> dict:
    return {"models": {"finetuned": block(0.5), "pretrained": block(0.25)},
            "baselines": {"chance": {"rougeL": 0.1}}, "differences": {"finetuned-pretrained": block(0.25)}}


def test_bar_rows_go_metric_by_metric_variants_first_and_a_missing_interval_is_the_point():
    rows = bar_rows(metrics())
    assert [(r["metric"], r["system"]) for r in rows[:2]] == [("rouge1", "pretrained"), ("rouge1", "finetuned")]
    assert len(rows) == 2 * len(HEADLINE) + 1
    assert {"metric": "rougeL", "system": "chance", "value": 0.1, "ci_low": 0.1, "ci_high": 0.1} in rows


def test_the_bars_csv_is_numbers_only(tmp_path):
    write_bar_csv(tmp_path / "bars.csv", bar_rows(metrics()))
    table = list(csv.DictReader((tmp_path / "bars.csv").read_text().splitlines()))
    assert table[0] == {"metric": "rouge1", "system": "pretrained", "value": "0.25", "ci_low": "0.125",
                        "ci_high": "0.375"}


def draw_all(out):
    m = metrics()
    plot_metric_bars(bar_rows(m), out / "bars.png", 50)
    plot_paired_diff(m["differences"]["finetuned-pretrained"], out / "diff.png", 50)
    per_example = [{"variant": v, **{k: 0.1 * i for k in HEADLINE}} for v in ("pretrained", "finetuned") for i in range(5)]
    plot_distributions(per_example, out / "dist.png", 50)
    plot_loss({"train": [(0, 3.0), (1, 2.0)], "val": [(1, 2.5)]}, out / "loss.png", 50)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_every_chart_is_a_png_and_a_rerun_draws_the_same_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = draw_all(tmp_path / "a"), draw_all(tmp_path / "b")
    assert sorted(first) == ["bars.png", "diff.png", "dist.png", "loss.png"]
    assert all(data.startswith(PNG) for data in first.values()) and first == second
