"""The report's charts: the metric bars with their intervals (PNG, and the CSV `dvc plots` draws), the paired
differences, the per-example score distributions and the loss curves.

Used by the report stage (stages/report.py), which decides which charts its inputs allow and where they go.
Every figure has a fixed size and is saved without a timestamp, so the same inputs draw byte-identical PNGs.
matplotlib comes from notelm.report.plotting (headless, CJK-capable).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.names import BERTSCORE_KEYS, HEADLINE, ROUGE_KEYS, eval_systems
from notelm.core.files import atomic_open
from notelm.report import plotting
from notelm.report.labels import LABELS, VARIANT_NAMES

CHART_SIZES = {  # inches; fixed so reruns draw byte-identical PNGs
    "metric_bars": (11, 4.5), "paired_diff": (8, 4.5), "score_distributions": (14, 7), "loss_curve": (8, 4.5),
}


def bar_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (headline metric, system): metric, system, value, ci_low, ci_high (variants, then baselines)."""
    systems = [(name, block) for name, _, block in eval_systems(metrics)]
    rows = []
    for key in HEADLINE:
        for name, block in systems:
            if key in block:
                rows.append({"metric": key, "system": name, "value": block[key],
                             "ci_low": block.get(f"{key}_ci_low", block[key]),
                             "ci_high": block.get(f"{key}_ci_high", block[key])})
    return rows


def write_bar_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write `bar_rows` output as CSV (the data of the `dvc plots` metric bars), atomically."""
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, ["metric", "system", "value", "ci_low", "ci_high"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _figure(name: str):
    plt = plotting.pyplot()
    plt.rcParams.update({"font.size": 9})
    return plt, plt.figure(figsize=CHART_SIZES[name])


def _save(plt, fig, path: Path, dpi: int) -> None:
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def plot_metric_bars(rows: list[dict[str, Any]], path: Path, dpi: int) -> None:
    """Grouped bars per metric and system with asymmetric 95 % error bars; ROUGE and BERTScore side by side."""
    plt, fig = _figure("metric_bars")
    systems = list(dict.fromkeys(r["system"] for r in rows))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [4, 3]})
    for ax, keys, title in ((axes[0], ROUGE_KEYS, "ROUGE"), (axes[1], BERTSCORE_KEYS, "BERTScore")):
        width = 0.8 / max(1, len(systems))
        for j, system in enumerate(systems):
            pts = [(i, r) for i, k in enumerate(keys) for r in rows if r["metric"] == k and r["system"] == system]
            if not pts:
                continue
            x = np.array([i for i, _ in pts]) + (j - (len(systems) - 1) / 2) * width
            val = np.array([r["value"] for _, r in pts])
            err = np.array([[r["value"] - r["ci_low"] for _, r in pts], [r["ci_high"] - r["value"] for _, r in pts]])
            ax.bar(x, val, width, yerr=np.clip(err, 0, None), capsize=2, label=VARIANT_NAMES.get(system, system))
        ax.set_xticks(range(len(keys)), [LABELS[k] for k in keys])
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=max(1, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    _save(plt, fig, path, dpi)


def plot_paired_diff(diff: dict[str, Any], path: Path, dpi: int) -> None:
    """Horizontal bars of finetuned − pretrained per metric with their paired 95 % intervals and a zero line."""
    plt, fig = _figure("paired_diff")
    keys = [k for k in HEADLINE if k in diff]
    ax = fig.subplots()
    y = np.arange(len(keys))[::-1]
    val = np.array([diff[k] for k in keys])
    err = np.array([[diff[k] - diff.get(f"{k}_ci_low", diff[k]) for k in keys],
                    [diff.get(f"{k}_ci_high", diff[k]) - diff[k] for k in keys]])
    ax.barh(y, val, xerr=np.clip(err, 0, None), capsize=3, color=["tab:green" if v >= 0 else "tab:red" for v in val])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [LABELS[k] for k in keys])
    ax.set_xlabel("fine-tuned − pre-trained")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(plt, fig, path, dpi)


def plot_distributions(rows: list[dict[str, Any]], path: Path, dpi: int) -> None:
    """Box plots of the per-example scores, one panel per headline metric, one box per system."""
    plt, fig = _figure("score_distributions")
    systems = list(dict.fromkeys(r["variant"] for r in rows))
    keys = [k for k in HEADLINE if k in rows[0]]
    axes = fig.subplots(2, 4).ravel()
    for ax in axes[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes, keys, strict=False):  # 8 panels, 7 metrics
        data = [[r[key] for r in rows if r["variant"] == s] for s in systems]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(systems) + 1), [VARIANT_NAMES.get(s, s) for s in systems], rotation=20, fontsize=7)
        ax.set_title(LABELS[key])
        ax.set_ylim(-0.02, 1.02)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(plt, fig, path, dpi)


def plot_loss(curves: dict[str, list[tuple[float, float]]], path: Path, dpi: int) -> None:
    """Train and val loss against the training step."""
    plt, fig = _figure("loss_curve")
    ax = fig.subplots()
    for name, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if name == "val" else None,
                markersize=4, label=f"{name} loss")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(plt, fig, path, dpi)
