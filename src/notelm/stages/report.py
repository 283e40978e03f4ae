"""The `report` stage: `reports/report.md` with the study's tables, the claim against the baselines, the
study-way diagnostic, lengths, leakage, data, training and charts.

Reads what the earlier stages wrote and renders one Markdown report with PNG charts beside it:

    metrics/detail/eval.json     required: scores, patient-clustered intervals, paired differences (evaluate)
    metrics/detail/data.json     rows, notes/patients per split, drops per reason (prepare)
    metrics/detail/leakage.json  the leakage audit (audit)
    eval/per_example.csv         per-example scores, for the score distributions (evaluate)
    generations/*.jsonl          a few completions side by side with their references (generate)
    dvclive/                     loss curves and the best val loss (train)

Only the eval metrics are required; a missing optional input leaves its section saying so. The tables
have the original study's shape: one row per metric, the pre-trained and fine-tuned model side by side,
and a one-line meaning of each metric. Every verdict ("better", "not distinguishable", "worse") is read
from a paired, patient-clustered interval, never from overlapping marginal ones. The report quotes a few
test notes, so `reports/` is a DVC output and git-ignored.

The stage also writes `metrics/metric_bars.csv` (metric, system,
value, ci_low, ci_high; numbers only), which `dvc plots show` draws as bars with intervals.
Same inputs give byte-identical outputs: no timestamps, fixed figure sizes, sorted keys.

This module reads the inputs and writes the outputs; the Markdown of each section is built by
notelm.report.sections, the charts and the bars CSV by notelm.report.charts, table cells by notelm.report.markdown.

    python -m notelm.stages.report --metrics metrics/detail/eval.json --data-metrics metrics/detail/data.json \
        --leakage metrics/detail/leakage.json --per-example eval/per_example.csv \
        --generations generations/pretrained.jsonl generations/finetuned.jsonl \
        --live dvclive --base models/base/smollm2-135m --out reports --bars metrics/metric_bars.csv
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.data import DataParams
from notelm.config.models import recorded_row
from notelm.config.names import CLAIM, HEADLINE, SUMMARY_METRICS, VARIANTS, eval_difference, eval_systems
from notelm.config.report import ReportParams
from notelm.config.train import TrainParams
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_dir, read_json, read_jsonl
from notelm.core.loader import load_section
from notelm.core.paths import (
    DATA_METRICS,
    CHART_AWARE_GENERATIONS,
    EVAL_DETAIL,
    FOLLOW_METRICS,
    LEAKAGE_DETAIL,
    LIVE_DIR,
    MEMORIZATION_DETAIL,
    METRIC_BARS,
    PER_EXAMPLE,
    REPORTS,
    SUGGEST_DETAIL,
    SYNTHETIC_NOTES,
    base_model_dir,
    generations_path,
    variant_of,
)
from notelm.report import plotting
from notelm.report.charts import (
    bar_rows,
    plot_distributions,
    plot_loss,
    plot_metric_bars,
    plot_paired_diff,
    write_bar_csv,
)
from notelm.report.sections import Inputs, render_markdown

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


@dataclass(frozen=True)
class Paths:
    """What the report reads and writes; defaults: the pipeline's paths."""

    metrics: str = EVAL_DETAIL
    """Scores, intervals and differences from evaluate (required)."""
    data_metrics: str = DATA_METRICS
    """The data summary from prepare (optional inputs, this and below: a missing one leaves its section saying so)."""
    leakage: str = LEAKAGE_DETAIL
    """Every leakage metric from audit."""
    memorization: str = MEMORIZATION_DETAIL
    """The memorization audit from memorize."""
    suggest: str = SUGGEST_DETAIL
    """Keystroke savings from suggest (its detail file)."""
    follow: str = FOLLOW_METRICS
    """The chart-aware continuations' threshold from follow."""
    per_example: str = PER_EXAMPLE
    """Per-example scores from evaluate."""
    generations: tuple[str, ...] = (*(str(generations_path(v)) for v in VARIANTS), CHART_AWARE_GENERATIONS)
    """Generations files whose completions are shown."""
    live: str = LIVE_DIR
    """dvclive directory: loss curves and the last logged values."""
    base: str | None = None
    """Base model whose notelm_source.json names the model row, its source and method (default: models/base/<model>)."""
    out: str = REPORTS
    """Report directory, replaced whole: report.md and the PNG charts."""
    bars: str = METRIC_BARS
    """metric, system, value, ci_low, ci_high: the `dvc plots` bars."""


# --------------------------------------------------------------------------- inputs


def read_per_example(path: Path) -> list[dict[str, Any]] | None:
    """Rows of eval/per_example.csv with the score columns as floats; None if the file is missing."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, 2):
        for key, value in row.items():
            if key not in ("note_id", "subject_id", "variant"):
                try:
                    row[key] = float(value) if value != "" else None
                except (TypeError, ValueError) as exc:
                    raise NoteLMError(f"{path}: line {i}: column {key}: not a number: {value!r}") from exc
    return rows


def _read_tsv(path: Path) -> list[tuple[float, float]]:
    """(step, value) pairs of a dvclive TSV (columns: step, ..., value last)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    out = []
    for row in rows[1:]:
        try:
            out.append((float(row[0]), float(row[-1])))
        except (IndexError, ValueError):
            continue
    return out


def read_loss_curves(live_dir: Path) -> dict[str, list[tuple[float, float]]] | None:
    """{"train": [(step, loss)], "val": [(step, loss)]} from dvclive's TSVs; None when there are none."""
    plots = live_dir / "plots" / "metrics"  # dvclive's layout (paths.LIVE_PLOTS)
    curves = {}
    for name, rel in (("train", "loss.tsv"), ("val", "eval/loss.tsv")):
        if (plots / rel).is_file():
            points = _read_tsv(plots / rel)
            if points:
                curves[name] = points
    return curves or None


def load_inputs(paths: Paths, run_info: dict[str, Any] | None = None) -> Inputs:
    """Read every input of the report; NoteLMError if the eval metrics are missing, None for other missing parts."""
    gens = {variant_of(path): read_jsonl(path) for path in paths.generations if Path(path).is_file()}
    live = Path(paths.live)
    return Inputs(
        eval=read_json(paths.metrics, hint="run the evaluate stage first (`dvc repro evaluate`)"),
        data=read_json(paths.data_metrics),
        leakage=read_json(paths.leakage),
        memorization=read_json(paths.memorization),
        suggest=read_json(paths.suggest),
        follow=read_json(paths.follow),
        per_example=read_per_example(Path(paths.per_example)),
        generations=gens or None,
        loss=read_loss_curves(live),
        live_metrics=read_json(live / "metrics.json"),
        run_info=run_info,
    )


# --------------------------------------------------------------------------- charts


def make_charts(inp: Inputs, out_dir: Path, dpi: int) -> dict[str, str]:
    """Draw every chart the inputs allow into `out_dir`; returns {chart name: file name}."""
    if warning := plotting.fonts_for(name for name, _, _ in eval_systems(inp.eval)):
        log.warning("report: %s", warning)
    charts = {}
    rows = bar_rows(inp.eval)
    if rows:
        plot_metric_bars(rows, out_dir / "metric_bars.png", dpi)
        charts["metric_bars"] = "metric_bars.png"
    diff = eval_difference(inp.eval)
    if any(k in diff for k in HEADLINE):
        plot_paired_diff(diff, out_dir / "paired_diff.png", dpi)
        charts["paired_diff"] = "paired_diff.png"
    if inp.per_example:
        plot_distributions(inp.per_example, out_dir / "score_distributions.png", dpi)
        charts["score_distributions"] = "score_distributions.png"
    if inp.loss:
        plot_loss(inp.loss, out_dir / "loss_curve.png", dpi)
        charts["loss_curve"] = "loss_curve.png"
    return charts


# --------------------------------------------------------------------------- the stage


def run_info(params: dict[str, Any], base: str | Path | None = None) -> dict[str, Any]:
    """What the summary says about the run: the model row base_model recorded in `base` (default
    models/base/<model>), its source and training method, and the data source and split from params."""
    row = recorded_row(base or base_model_dir(params["model"]))
    data = load_section(DataParams, params)
    return {
        "model": row.name,
        "source": row.source,
        "method": load_section(TrainParams, params).method_for(row),
        "raw_path": data.raw_path,
        "synthetic": data.raw_path == SYNTHETIC_NOTES,
        "split_by": data.split_by,
        "fraction": data.fraction,
        "history": data.history,
    }


def write_report(cfg: ReportParams, paths: Paths = Paths(), info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render the report into `paths.out` (replaced whole, atomically) and the bars CSV; returns a summary."""
    inp = load_inputs(paths, info)
    out = Path(paths.out)
    with atomic_dir(out) as tmp:
        charts = make_charts(inp, tmp, cfg.dpi)
        (tmp / "report.md").write_text(render_markdown(inp, cfg, paths, charts), encoding="utf-8")
    write_bar_csv(Path(paths.bars), bar_rows(inp.eval))
    claim = eval_difference(inp.eval, CLAIM)
    verdicts = {k: claim[f"{k}_verdict"] for k in SUMMARY_METRICS if f"{k}_verdict" in claim}
    log.info("report: wrote %s with %d charts", out / "report.md", len(charts))
    for key, verdict in verdicts.items():
        if verdict != "better":
            log.warning("report: on %s the fine-tuned model is %s the best baseline (%s)", key,
                        "worse than" if verdict == "worse" else "not distinguishable from", claim[f"{key}_baseline"])
    return {"report": str(out / "report.md"), "charts": sorted(charts.values()), "claim": verdicts}


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The report stage: the `report:` params (and the run's model and data params for the summary) → `paths.out`."""
    return write_report(load_section(ReportParams, params), paths, run_info(params, paths.base))


def main(argv: list[str] | None = None) -> int:
    return runner.main("report", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
