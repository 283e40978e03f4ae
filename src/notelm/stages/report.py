"""The `report` stage: `reports/report.md` with the study's tables, baselines, leakage, data, training and charts.

Reads what the earlier stages wrote and renders one Markdown report with PNG charts beside it:

    metrics/eval.json          required: scores with 95 % intervals (evaluate)
    metrics/data.json          rows, notes/patients per split, drops per reason (prepare)
    metrics/leakage.json       the leakage audit (audit)
    eval/per_example.csv       per-example scores, for the score distributions (evaluate)
    generations/*.jsonl        a few completions side by side with their references (generate)
    dvclive/                   loss curves and the best val loss (train)

Only `metrics/eval.json` is required; a missing optional input leaves its section saying so.
The tables have the original study's shape: one row per metric, the pre-trained and fine-tuned
model side by side, and a one-line meaning of each metric. The report quotes a few test notes,
so `reports/` is a DVC output and git-ignored.

The stage also writes `report.bars_path` (default `metrics/metric_bars.csv`: metric, system,
value, ci_low, ci_high; numbers only), which `dvc plots show` draws as bars with intervals.
Same inputs give byte-identical outputs: no timestamps, fixed figure sizes, sorted keys.

    python -m notelm.stages.report --metrics metrics/eval.json --data-metrics metrics/data.json \
        --leakage metrics/leakage.json --per-example eval/per_example.csv \
        --generations generations/pretrained.jsonl generations/finetuned.jsonl \
        --live dvclive --out reports --bars metrics/metric_bars.csv
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from notelm import runner
from notelm.artifacts import (
    BASELINES,
    BERTSCORE_KEYS,
    DATA_METRICS,
    EVAL_METRICS,
    HEADLINE,
    LABELS,
    LEAKAGE_METRICS,
    LIVE_DIR,
    MEANINGS,
    METRIC_BARS,
    PER_EXAMPLE,
    REPORTS,
    ROUGE_KEYS,
    SYNTHETIC_NOTES,
    VARIANT_NAMES,
    VARIANTS,
    atomic_dir,
    atomic_open,
    eval_difference,
    eval_systems,
    generations_path,
    read_json,
    read_jsonl,
    variant_of,
)
from notelm.errors import NoteLMError
from notelm.params import DataParams, ReportParams, TrainParams, load_section, model_row

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`

BASELINE_DOC = {
    "copy_last_sentence": "the prompt's last sentence, copied as the continuation",
    "retrieval": "the continuation of the most similar train note (TF-IDF over prompts)",
}
LEAKAGE_DOC = {
    "subject_overlap": "patients with notes in both splits",
    "admission_overlap": "admissions in both splits",
    "exact_dup_test_in_train": "notes whose whole text is also a train note",
    "near_dup_test_in_train": "notes with a near-duplicate train note (MinHash Jaccard)",
    "target_in_train": "targets found verbatim inside a train note",
}
CHART_SIZES = {  # inches; fixed so reruns draw byte-identical PNGs
    "metric_bars": (11, 4.5), "paired_diff": (8, 4.5), "score_distributions": (14, 7), "loss_curve": (8, 4.5),
}


@dataclass(frozen=True)
class Paths:
    """What the report reads and writes (the stage's command-line options); defaults: the pipeline's paths."""

    metrics: str = EVAL_METRICS         # required: scores and intervals from evaluate
    data_metrics: str = DATA_METRICS    # optional inputs: a missing one leaves its section saying so
    leakage: str = LEAKAGE_METRICS
    per_example: str = PER_EXAMPLE
    generations: tuple[str, ...] = tuple(str(generations_path(v)) for v in VARIANTS)  # completions shown
    live: str = LIVE_DIR                # loss curves and dvclive's metrics.json
    out: str = REPORTS                  # replaced whole: report.md and the PNG charts
    bars: str = METRIC_BARS             # metric, system, value, ci_low, ci_high: the `dvc plots` bars


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """Everything the report shows; optional parts are None when their file is missing."""

    eval: dict[str, Any]
    data: dict[str, Any] | None = None
    leakage: dict[str, Any] | None = None
    per_example: list[dict[str, Any]] | None = None
    generations: dict[str, list[dict[str, Any]]] | None = None
    loss: dict[str, list[tuple[float, float]]] | None = None  # {"train": [(step, loss)], "val": [...]}
    live_metrics: dict[str, Any] | None = None
    run_info: dict[str, Any] | None = None


def read_per_example(path: Path) -> list[dict[str, Any]] | None:
    """Rows of eval/per_example.csv with the score columns as floats; None if the file is missing."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, 2):
        for key, value in row.items():
            if key not in ("note_id", "variant"):
                try:
                    row[key] = float(value)
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
    plots = live_dir / "plots" / "metrics"  # dvclive's layout (artifacts.LIVE_PLOTS)
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
        per_example=read_per_example(Path(paths.per_example)),
        generations=gens or None,
        loss=read_loss_curves(live),
        live_metrics=read_json(live / "metrics.json"),
        run_info=run_info,
    )


# --------------------------------------------------------------------------- formatting helpers


def variants_of(metrics: dict[str, Any]) -> list[str]:
    """The model variants in eval.json (artifacts.eval_systems): pretrained, finetuned first, then others by name."""
    return [name for name, kind, _ in eval_systems(metrics) if kind == "model"]


def fmt(value: Any, digits: int = 4) -> str:
    """A number with `digits` decimals (ints as they are); '–' for a missing value."""
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(block: dict[str, Any] | None, key: str, signed: bool = False) -> str:
    """`0.1234 [0.1000, 0.1400]` from a metrics block; '–' if the metric is absent."""
    if not block or key not in block:
        return "–"
    sign = "+" if signed else ""
    point = f"{block[key]:{sign}.4f}"
    low, high = block.get(f"{key}_ci_low"), block.get(f"{key}_ci_high")
    if low is None or high is None:
        return point
    return f"{point} [{low:{sign}.4f}, {high:{sign}.4f}]"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_text(text: str) -> str:
    """`text` on one line with Markdown specials escaped, safe inside a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with '…' when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut + " …"


def tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text`, starting at a word boundary, with '…' when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "… " + (cut.split(" ", 1)[1] if " " in cut else cut)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub Markdown table as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def beats_retrieval(metrics: dict[str, Any]) -> dict[str, bool | None]:
    """{rougeL, bertscore_f1}: does the fine-tuned point estimate exceed the retrieval baseline's? None = not scored."""
    fine = metrics.get("finetuned") or {}
    retr = (metrics.get(BASELINES) or {}).get("retrieval") or {}
    return {k: (fine[k] > retr[k]) if k in fine and k in retr else None for k in ("rougeL", "bertscore_f1")}


def retrieval_flags(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines: a warning for each of ROUGE-L, BERTScore F1 where fine-tuning does not beat retrieval."""
    fine = metrics.get("finetuned") or {}
    retr = (metrics.get(BASELINES) or {}).get("retrieval") or {}
    lines = []
    for key, beats in beats_retrieval(metrics).items():
        name = "ROUGE-L" if key == "rougeL" else "BERTScore F1"
        if beats is None:
            lines.append(f"- {name}: fine-tuned vs retrieval not available (both must be scored).")
        elif beats:
            overlap = fine.get(f"{key}_ci_low", fine[key]) <= retr.get(f"{key}_ci_high", retr[key])
            lines.append(f"- {name}: the fine-tuned model beats the retrieval baseline "
                         f"({fine[key]:.4f} vs {retr[key]:.4f})"
                         + ("; their 95 % intervals overlap, so the margin is not clear." if overlap else "."))
        else:
            lines.append(f"- ⚠️ **WARNING: the fine-tuned model does not beat the retrieval baseline on {name}** "
                         f"({fine[key]:.4f} vs {retr[key]:.4f}): copying the nearest train note does as well.")
    return lines


def leakage_flags(leakage: dict[str, Any] | None) -> list[str]:
    """Markdown warning lines for any test patient or exact duplicate shared with train."""
    if not leakage:
        return []
    leaks = [f"{k}={leakage[k]}" for k in ("subject_overlap", "exact_dup_test_in_train") if leakage.get(k)]
    if not leaks:
        return []
    return [f"- ⚠️ **WARNING: test notes leak into train** ({', '.join(leaks)}): scores are optimistic."]


# --------------------------------------------------------------------------- sections


def section_summary(inp: Inputs) -> list[str]:
    m, info = inp.eval, inp.run_info or {}
    lines = ["## Summary", ""]
    if info.get("model"):
        source = f" (source `{info['source']}`)" if info.get("source") else ""
        method = f", fine-tuned with `{info['method']}`" if info.get("method") else ""
        lines.append(f"- **Model**: `{info['model']}`{source}{method}.")
    data_line = []
    if info.get("raw_path"):
        synthetic = " — the synthetic corpus: numbers show the pipeline works, not clinical quality" \
            if info.get("synthetic") else ""
        data_line.append(f"`{info['raw_path']}`{synthetic}")
    if info.get("split_by"):
        data_line.append(f"split by {info['split_by']}")
    if info.get("fraction") is not None:
        data_line.append(f"train fraction {info['fraction']}")
    if inp.data:
        counts = [str((inp.data.get(s) or {}).get("notes", "–")) for s in ("train", "val", "test")]
        data_line.append(f"{' / '.join(counts)} notes (train / val / test)")
    if data_line:
        lines.append(f"- **Data**: {'; '.join(data_line)}.")
    lines.append(f"- **Test examples scored**: {m.get('n_examples', '–')}.")
    bert = m.get("bertscore") or {}
    if bert:
        scale = "rescaled" if bert.get("rescaled") else "raw (not rescaled)"
        lines.append(f"- **BERTScore**: encoder `{bert.get('model')}`, layer {bert.get('layer')}, "
                     f"idf {str(bert.get('idf')).lower()}, {scale}.")
    boot = m.get("bootstrap") or {}
    if boot:
        lines.append(f"- **Intervals**: {round(100 * boot.get('confidence', 0.95))} % percentile bootstrap, "
                     f"{boot.get('samples')} resamples, seed {boot.get('seed')}.")
    diff = eval_difference(m)
    if "rougeL" in diff and "bertscore_f1" in diff:
        lines.append(f"- **Fine-tuned − pre-trained**: ROUGE-L {fmt_ci(diff, 'rougeL', signed=True)}, "
                     f"BERTScore F1 {fmt_ci(diff, 'bertscore_f1', signed=True)}.")
    lines += retrieval_flags(m) + leakage_flags(inp.leakage)
    return lines + [""]


def _metric_table(m: dict[str, Any], keys: list[str]) -> list[str]:
    variants = variants_of(m)
    header = ["Metric", *(VARIANT_NAMES.get(v, v) for v in variants), "Meaning"]
    rows = [[LABELS.get(k, k), *(fmt_ci(m.get(v), k) for v in variants), MEANINGS.get(k, "")]
            for k in keys if any(k in (m.get(v) or {}) for v in variants)]
    return table(header, rows)


def section_rouge(inp: Inputs) -> list[str]:
    lines = ["## ROUGE (literal overlap)", "",
             "F1 of `rouge_score` with stemming, mean over test examples, 95 % interval in brackets.", ""]
    return lines + _metric_table(inp.eval, ROUGE_KEYS) + [""]


def section_bertscore(inp: Inputs) -> list[str]:
    bert = inp.eval.get("bertscore") or {}
    keys = [*BERTSCORE_KEYS, *(f"{k}_rescaled" for k in BERTSCORE_KEYS)]
    lines = ["## BERTScore (semantic similarity)", "",
             f"Greedy-matched contextual embeddings (encoder `{bert.get('model', '?')}`, "
             f"layer {bert.get('layer', '?')}); scores of different encoders are not comparable.", ""]
    lines += _metric_table(inp.eval, keys) + [""]
    if any("perplexity" in (inp.eval.get(v) or {}) for v in variants_of(inp.eval)):
        lines += _metric_table(inp.eval, ["perplexity"]) + [""]
    return lines


def section_diff(inp: Inputs) -> list[str]:
    lines = ["## Fine-tuned − pre-trained (paired difference)", ""]
    diff = eval_difference(inp.eval)
    if not diff:
        return lines + ["Not available: `diff` is missing from the metrics (both variants must be evaluated).", ""]
    lines += ["Paired bootstrap over the same test examples; an interval that excludes 0 is a real change.", ""]
    rows = []
    for k in (*HEADLINE, "perplexity"):
        if k not in diff:
            continue
        low, high = diff.get(f"{k}_ci_low", diff[k]), diff.get(f"{k}_ci_high", diff[k])
        verdict = "higher" if low > 0 else "lower" if high < 0 else "no clear difference"
        rows.append([LABELS[k], fmt_ci(diff, k, signed=True), verdict])
    return lines + table(["Metric", "Fine-tuned − pre-trained [95 % CI]", "Fine-tuned is"], rows) + [""]


def section_baselines(inp: Inputs) -> list[str]:
    m = inp.eval
    lines = ["## Baselines", "", "Model-free continuations scored the same way on the same test examples:", ""]
    baselines = m.get(BASELINES) or {}
    lines += [f"- `{name}`: {BASELINE_DOC.get(name, 'baseline')}" for name in baselines] or ["- none were scored"]
    lines.append("")
    systems = [(VARIANT_NAMES.get(v, v), m[v]) for v in variants_of(m)]
    systems += [(f"`{name}`", block) for name, block in baselines.items()]
    rows = [[name, *(fmt_ci(block, k) if k in ("rougeL", "bertscore_f1") else fmt(block.get(k)) for k in HEADLINE)]
            for name, block in systems]
    lines += table(["System", *(LABELS[k] for k in HEADLINE)], rows) + [""]
    return lines + retrieval_flags(m) + [""]


def section_leakage(inp: Inputs, paths: Paths) -> list[str]:
    lines = ["## Leakage", ""]
    leak = inp.leakage
    if not leak:
        return lines + [f"Not available: `{paths.leakage}` not found (run `dvc repro audit`).", ""]
    val = leak.get("val_vs_train") or {}
    lines += [f"Audit of the prepared splits: {leak.get('n_test', '–')} test and {val.get('n_val', '–')} val notes "
              f"against {leak.get('n_train', '–')} train notes.", ""]
    keys = [k for k, v in leak.items() if not (isinstance(v, dict) or k.startswith("n_") or k.endswith("_rate"))]
    keys.sort(key=lambda k: (list(LEAKAGE_DOC).index(k) if k in LEAKAGE_DOC else len(LEAKAGE_DOC), k))
    rows = []
    for key in keys:
        value = leak[key]
        vkey = key.replace("test", "val")
        ngram = re.fullmatch(r"ngram(\d+)_containment", key)
        meaning = f"share of distinct word {ngram.group(1)}-grams also in train" if ngram else LEAKAGE_DOC.get(key, "")
        test_cell = fmt(value) + (f" ({leak[key + '_rate']:.2%})" if f"{key}_rate" in leak else "")
        val_cell = fmt(val.get(vkey)) + (f" ({val[vkey + '_rate']:.2%})" if f"{vkey}_rate" in val else "")
        rows.append([f"`{key}`", test_cell, val_cell, meaning])
    lines += table(["Metric", "Test vs train", "Val vs train", "Meaning"], rows) + [""]
    return lines + (leakage_flags(leak) or ["No test patient or exact duplicate is shared with train."]) + [""]


def section_data(inp: Inputs, paths: Paths) -> list[str]:
    lines = ["## Data", ""]
    d = inp.data
    if not d:
        return lines + [f"Not available: `{paths.data_metrics}` not found (run `dvc repro prepare`).", ""]
    pool = f", {d['train_pool_notes']} in the train pool before `data.fraction`" if "train_pool_notes" in d else ""
    lines += [f"{d.get('rows_read', '–')} rows read, {d.get('notes_kept', '–')} notes kept{pool}.", ""]
    cols = ["notes", "patients", "admissions", "mean_words", "mean_target_words"]
    rows = [[split, *(fmt(d[split].get(c), 1) for c in cols)]
            for split in ("train", "val", "test") if isinstance(d.get(split), dict)]
    lines += table(["Split", "Notes", "Patients", "Admissions", "Mean words", "Mean target words"], rows) + [""]
    dropped = d.get("dropped") or {}
    kept = {k: v for k, v in sorted(dropped.items()) if v}
    if kept:
        lines += table(["Dropped because", "Rows"], [[f"`{k}`", str(v)] for k, v in kept.items()])
    else:
        lines.append("No rows were dropped.")
    return lines + [""]


def best_val_loss(inp: Inputs) -> float | None:
    """The lowest val loss in dvclive's curve, else dvclive/metrics.json's eval.loss, else None."""
    if inp.loss and inp.loss.get("val"):
        return min(v for _, v in inp.loss["val"])
    ev = (inp.live_metrics or {}).get("eval")
    return ev.get("loss") if isinstance(ev, dict) else None


def section_training(inp: Inputs, paths: Paths, charts: dict[str, str]) -> list[str]:
    lines = ["## Training", ""]
    if not inp.loss and not inp.live_metrics:
        return lines + [f"Not available: no dvclive output in `{paths.live}/` (run `dvc repro train`).", ""]
    best = best_val_loss(inp)
    live = inp.live_metrics or {}
    train = live.get("train") if isinstance(live.get("train"), dict) else {}
    facts = []
    if isinstance(live.get("epoch"), (int, float)):
        facts.append(f"{live['epoch']:g} epoch(s)")
    if isinstance(train.get("runtime"), (int, float)):
        facts.append(f"{train['runtime']:.0f} s of training")
    if isinstance(train.get("loss"), (int, float)):
        facts.append(f"mean train loss {train['loss']:.4f}")
    if inp.loss and inp.loss.get("train"):
        facts.append(f"last logged train loss {inp.loss['train'][-1][1]:.4f}")
    if best is None:
        facts.append("no val loss logged")
    else:
        facts.append(f"best val loss {best:.4f}" + (f" (perplexity {math.exp(best):.2f})" if best < 50 else ""))
    lines += [f"{'; '.join(facts)}.", ""]
    if "loss_curve" in charts:
        lines += [f"![loss curves]({charts['loss_curve']})", ""]
    return lines


def _scores_by_note(rows: list[dict[str, Any]] | None) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["note_id"], r["variant"]): r for r in rows or []}


def section_completions(inp: Inputs, cfg: ReportParams, paths: Paths) -> list[str]:
    lines = ["## Completions", ""]
    gens = inp.generations
    if not gens:
        return lines + [f"Not available: no generations in {', '.join(f'`{p}`' for p in paths.generations)}.", ""]
    if cfg.n_examples_shown == 0:
        return lines + ["None shown (`report.n_examples_shown: 0`).", ""]
    lines += [f"The first {cfg.n_examples_shown} test examples; texts cut to {cfg.max_chars} characters. "
              "This section quotes note text: keep `reports/` out of git.", ""]
    scores = _scores_by_note(inp.per_example)
    first = next(iter(gens.values()))
    by_id = {v: {r["note_id"]: r for r in rows} for v, rows in gens.items()}
    for i, row in enumerate(first[:cfg.n_examples_shown], 1):
        nid = row["note_id"]
        lines += [f"### Example {i} (note `{md_text(nid)}`)", "",
                  f"**Prompt (end):** {md_text(tail(row.get('prompt', ''), cfg.prompt_tail_chars))}", ""]
        rows = [["Reference", md_text(truncate(row.get("reference", ""), cfg.max_chars)), "", ""]]
        for v in gens:
            g = by_id[v].get(nid)
            s = scores.get((nid, v), {})
            text = md_text(truncate(g.get("completion", ""), cfg.max_chars)) if g else "(missing)"
            rows.append([VARIANT_NAMES.get(v, v), text, fmt(s.get("rougeL")), fmt(s.get("bertscore_f1"))])
        lines += table(["", "Text", "rougeL", "BERTScore F1"], rows) + [""]
    return lines


def section_charts(inp: Inputs, paths: Paths, charts: dict[str, str]) -> list[str]:
    lines = ["## Charts", ""]
    captions = {
        "metric_bars": "Mean scores with 95 % intervals, models and baselines",
        "paired_diff": "Fine-tuned − pre-trained, paired 95 % intervals",
        "score_distributions": "Per-example score distributions",
    }
    for name, caption in captions.items():
        if name in charts:
            lines += [f"### {caption}", "", f"![{caption}]({charts[name]})", ""]
    if "score_distributions" not in charts:
        lines += [f"Score distributions not available: `{paths.per_example}` not found.", ""]
    return lines


def render_markdown(inp: Inputs, cfg: ReportParams, paths: Paths, charts: dict[str, str]) -> str:
    """The whole report as Markdown; `charts` maps chart name → file name relative to the report."""
    lines = ["# NoteLM report", ""]
    lines += section_summary(inp) + section_rouge(inp) + section_bertscore(inp) + section_diff(inp)
    lines += section_baselines(inp) + section_leakage(inp, paths) + section_data(inp, paths)
    lines += section_training(inp, paths, charts) + section_completions(inp, cfg, paths)
    lines += section_charts(inp, paths, charts)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- charts


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def make_charts(inp: Inputs, out_dir: Path, dpi: int) -> dict[str, str]:
    """Draw every chart the inputs allow into `out_dir`; returns {chart name: file name}."""
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


def run_info(params: dict[str, Any]) -> dict[str, Any]:
    """What the summary says about the run, from params.yaml: model row, source, method, data source and split."""
    row = model_row(params)
    data = load_section(DataParams, params, "data")
    return {
        "model": row.name,
        "source": row.source,
        "method": load_section(TrainParams, params, "train").method_for(row),
        "raw_path": data.raw_path,
        "synthetic": data.raw_path == SYNTHETIC_NOTES,
        "split_by": data.split_by,
        "fraction": data.fraction,
    }


def write_report(cfg: ReportParams, paths: Paths = Paths(), info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render the report into `paths.out` (replaced whole, atomically) and the bars CSV; returns a summary."""
    inp = load_inputs(paths, info)
    out = Path(paths.out)
    with atomic_dir(out) as tmp:
        charts = make_charts(inp, tmp, cfg.dpi)
        (tmp / "report.md").write_text(render_markdown(inp, cfg, paths, charts), encoding="utf-8")
    write_bar_csv(Path(paths.bars), bar_rows(inp.eval))
    beats = beats_retrieval(inp.eval)
    log.info("report: wrote %s with %d charts", out / "report.md", len(charts))
    for key, ok in beats.items():
        if ok is False:
            log.warning("report: the fine-tuned model does not beat the retrieval baseline on %s", key)
    return {"report": str(out / "report.md"), "charts": sorted(charts.values()),
            "finetuned_beats_retrieval": beats}


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The report stage: the `report:` params (and the run's model and data params for the summary) → `paths.out`."""
    return write_report(load_section(ReportParams, params, "report"), paths, run_info(params))


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("report", __doc__)
    for f in fields(Paths):
        many = {"nargs": "+"} if f.name == "generations" else {}
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=f.default, **many,
                            help=f"(default: {' '.join(f.default) if many else f.default})")
    args = parser.parse_args(argv)
    paths = Paths(**{f.name: tuple(v) if isinstance(v := getattr(args, f.name), list) else v for f in fields(Paths)})
    return runner.execute("report", args, lambda params: run(params, paths))


if __name__ == "__main__":
    raise SystemExit(main())
