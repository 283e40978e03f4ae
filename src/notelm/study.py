"""The original study's grid, run as DVC experiments, and its tables beside ours (`notelm grid`, `notelm compare --study`).

study/grid.yaml holds one preset per run the study made (its recipe from the seeds' training table) and the
column of the study's tables it stands beside; study/published.csv holds the study's own figures,
transcribed from its 10/16 report (after it removed test notes from its training set). `notelm grid`
queues every preset as a DVC experiment named after it; `notelm compare --study` renders the study's three
tables (pre-train, fine-tune, all) with, for each of its columns, the study's figure, ours scored on the
continuation only, and ours scored the study's way (prompt + continuation against the whole note), which is
how the study's figures were made.
"""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from notelm.cluster.points import Point, load
from notelm.config.models import model_row
from notelm.config.names import HEADLINE, VARIANTS
from notelm.core.errors import NoteLMError, WeightsUnavailable
from notelm.core.loader import load_params
from notelm.report import markdown
from notelm.report.labels import LABELS
from notelm.training.weights import resolve

GRID = "study/grid.yaml"
PUBLISHED = "study/published.csv"
TABLES = ("pre-train", "fine-tune")


@dataclass(frozen=True)
class Preset:
    """One run of the study: its experiment name, model row, params overrides and the study column it matches."""

    name: str
    model: str
    column: str | None = None
    pretrained_only: bool = False
    set: dict[str, Any] = field(default_factory=dict)

    def command(self, queue: bool = True) -> list[str]:
        """`dvc exp run [--queue] -n <name> -S model=<model> -S key=value ...`."""
        return self.point().command(queue)

    def point(self) -> Point:
        """The preset as a grid point (its name and its `-S` overrides, the model first)."""
        return Point(self.name, {"model": self.model, **self.set})


def presets(path: str | Path = GRID) -> list[Preset]:
    """The grid's presets; a clear error naming the file and preset when one is malformed."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    out = []
    for name, body in raw.items():
        try:
            out.append(Preset(name=name, **body))
        except TypeError as exc:
            raise NoteLMError(f"{path}: preset {name!r}: {exc}") from exc
    return out


def runs_offline(model: str, params: dict[str, Any]) -> bool:
    """Whether the weights of the row `model` are here without a download (a wheel, a local folder, the HF cache)."""
    import os

    row = model_row(params, model)
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        resolve(row.source, f"models.{row.name}.source", row.revision)
        return True
    except WeightsUnavailable:
        return False
    finally:
        if previous is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def offline_points(points: list[Point], params: dict[str, Any]) -> tuple[list[Point], list[str]]:
    """(the points whose weights are here, a `# <point>: skipped ...` line for each of the others)."""
    kept, skipped = [], []
    for point in points:
        model = str(point.overrides.get("model", params.get("model")))
        if runs_offline(model, params):
            kept.append(point)
        else:
            skipped.append(f"# {point.name}: skipped, the weights of {model} are not here (needs the hub once)")
    return kept, skipped


def grid(queue: bool = False, offline_only: bool = False, params_file: str = "params.yaml",
         path: str | Path = GRID) -> str:
    """The `dvc exp run` command of every point of a grid file (default: the study's presets; only those whose
    weights are here with `offline_only`); with `queue`, runs them, so that `dvc queue start` trains the grid.
    Returns what it did, one line each."""
    params = load_params(params_file)
    points, lines = load(path), []
    if offline_only:
        points, lines = offline_points(points, params)
    for point in points:
        cmd = point.command(queue)
        lines.append(" ".join(cmd))
        if queue:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise NoteLMError(f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return "\n".join(lines) + "\n"


def published(path: str | Path = PUBLISHED) -> dict[tuple[str, str], dict[str, float]]:
    """{(table, column): {metric: the study's figure}}."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        out: dict[tuple[str, str], dict[str, float]] = {}
        for row in csv.DictReader(fh):
            out.setdefault((row["table"], row["column"]), {})[row["metric"]] = float(row["value"])
    return out


def _ours(rows: list[dict[str, Any]], runs: set[str], variant: str, model: str) -> dict[str, Any] | None:
    """Our row of `variant` for `model` from one of the named runs, if any."""
    for row in rows:
        if row["variant"] == variant and row["model"] == model and runs & {r.strip() for r in row["runs"].split(",")}:
            return row
    return None


def study_columns(rows: list[dict[str, Any]], table: str, params: dict[str, Any] | None = None,
                  ) -> list[tuple[str, dict | None, dict | None]]:
    """(column, the study's figures or None, our row or None) for every column of `table`, the study's columns
    first (in its order), then our runs that the study did not have (marked with a *). A preset's model is
    resolved to its row (aliases too), as the rows name it."""
    params = params or load_params()
    figures = published()
    grid_ = [(p, _row_name(params, p.model)) for p in presets()]
    variant = VARIANTS[0] if table == "pre-train" else VARIANTS[1]
    out = []
    for (t, column), values in figures.items():
        if t != table:
            continue
        model = _model_of(column)
        matches = [(p, name) for p, name in grid_ if p.column == column or (table == "pre-train" and name == model)]
        ours = next((r for p, name in matches if (r := _ours(rows, {p.name}, variant, name))), None)
        out.append((column, values, ours))
    for preset, name in grid_:
        if preset.column is None and (ours := _ours(rows, {preset.name, "main", "workspace"}, variant, name)):
            out.append((f"{name}*", None, ours))
    return out


def _row_name(params: dict[str, Any], model: str) -> str:
    try:
        return model_row(params, model).name
    except NoteLMError:
        return model


def _model_of(column: str) -> str | None:
    with Path(PUBLISHED).open(encoding="utf-8", newline="") as fh:
        return next((r["model"] for r in csv.DictReader(fh) if r["column"] == column), None)


def study_tables(rows: list[dict[str, Any]], params: dict[str, Any] | None = None) -> str:
    """The study's three tables (pre-train, fine-tune, all) in Markdown: per column the study's figure, ours
    (continuation only) and ours the study's way, or `–` where a run is missing."""
    parts = ["Each cell: the study's figure / ours, continuation only / ours, the study's way (prompt + "
             "continuation against the whole note, as the study scored). `–`: not run here (the grid's hub models "
             "need their weights once); `*`: a model the study did not have. The study used roberta-large "
             "for BERTScore, we the bundled MiniLM: its BERTScore columns are not comparable with ours.", ""]
    every = []
    for table in TABLES:
        columns = study_columns(rows, table, params)
        every += [(f"{c} ({'pre' if table == 'pre-train' else 'fine'})", s, o) for c, s, o in columns]
        parts += [f"### {table}", "", *_table(columns), ""]
    parts += ["### all", "", *_table(every), ""]
    return "\n".join(parts)


def _table(columns: list[tuple[str, dict | None, dict | None]]) -> list[str]:
    def cell(study: dict | None, ours: dict | None, key: str) -> str:
        ours = ours or {}
        return " / ".join(markdown.fmt(v, 3) for v in (study[key] if study else None, ours.get(key),
                                                         ours.get(f"study_{key}")))

    rows = [[LABELS[key], *(cell(s, o, key) for _, s, o in columns)] for key in HEADLINE]
    return markdown.table(["metric", *(c for c, _, _ in columns)], rows)
