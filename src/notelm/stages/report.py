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
and a one-line meaning of each metric. Every verdict ("beats", "not distinguishable", "worse") is read
from a paired, patient-clustered interval, never from overlapping marginal ones. The report quotes a few
test notes, so `reports/` is a DVC output and git-ignored.

The stage also writes `metrics/metric_bars.csv` (metric, system,
value, ci_low, ci_high; numbers only), which `dvc plots show` draws as bars with intervals.
Same inputs give byte-identical outputs: no timestamps, fixed figure sizes, sorted keys.

    python -m notelm.stages.report --metrics metrics/detail/eval.json --data-metrics metrics/detail/data.json \
        --leakage metrics/detail/leakage.json --per-example eval/per_example.csv \
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

from notelm import charts as charts_lib
from notelm import runner
from notelm.artifacts import (
    BASELINE_DOC,
    BERTSCORE_KEYS,
    CLAIM,
    DATA_METRICS,
    EVAL_DETAIL,
    HEADLINE,
    LABELS,
    LEAKAGE_DETAIL,
    LIVE_DIR,
    MEANINGS,
    METRIC_BARS,
    NAMES,
    PER_EXAMPLE,
    REPORTS,
    ROUGE_KEYS,
    SUMMARY_METRICS,
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

    metrics: str = EVAL_DETAIL          # required: scores, intervals and differences from evaluate
    data_metrics: str = DATA_METRICS    # optional inputs: a missing one leaves its section saying so
    leakage: str = LEAKAGE_DETAIL
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


def system_name(name: str) -> str:
    """How a system is named in tables: Pre-trained / Fine-tuned, or the baseline's name in code style."""
    return VARIANT_NAMES.get(name, f"`{name}`")


def claim_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines stating, per summary metric, what the paired clustered interval of fine-tuned − best
    baseline says: it beats the strongest baseline, is not distinguishable from it, or is worse (a warning)."""
    claim = eval_difference(metrics, CLAIM)
    lines = []
    for key in SUMMARY_METRICS:
        if key not in claim:
            continue
        name, verdict = NAMES[key], claim[f"{key}_verdict"]
        against = f"the best baseline, `{claim[f'{key}_baseline']}`: {fmt_ci(claim, key, signed=True)}"
        if verdict == "beats":
            lines.append(f"- {name}: the fine-tuned model **beats** {against}.")
        elif verdict == "worse":
            lines.append(f"- ⚠️ **WARNING: on {name} the fine-tuned model is worse than** {against}.")
        else:
            lines.append(f"- {name}: the fine-tuned model is **not distinguishable** from {against}.")
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
    boot = m.get("bootstrap") or {}
    lines.append(f"- **Test examples scored**: {m.get('n_examples', '–')} notes of {boot.get('clusters', '–')} "
                 "patients.")
    bert = m.get("bertscore") or {}
    if bert:
        scale = f"also rescaled ({bert['rescaled_by']})" if bert.get("rescaled_by") else "raw (not rescaled)"
        lines.append(f"- **BERTScore**: encoder `{bert.get('model')}`, layer {bert.get('layer')}, "
                     f"idf {str(bert.get('idf')).lower()}, {scale}.")
    if boot:
        lines.append(f"- **Intervals**: {round(100 * boot.get('confidence', 0.95))} % percentile bootstrap over "
                     f"{boot.get('unit', 'patient')}s ({boot.get('samples')} resamples, seed {boot.get('seed')}); "
                     "every difference is paired (the same resampled patients for both systems).")
    if boot.get("warning"):
        lines.append(f"- ⚠️ **WARNING: {boot['warning']}.**")
    diff = eval_difference(m)
    if "rougeL" in diff and "bertscore_f1" in diff:
        lines.append(f"- **Fine-tuned − pre-trained**: ROUGE-L {fmt_ci(diff, 'rougeL', signed=True)}, "
                     f"BERTScore F1 {fmt_ci(diff, 'bertscore_f1', signed=True)}.")
    lines += claim_lines(m) + leakage_flags(inp.leakage)
    return lines + [""]


def _metric_table(m: dict[str, Any], keys: list[str]) -> list[str]:
    models = [(name, block) for name, kind, block in eval_systems(m) if kind == "model"]
    header = ["Metric", *(system_name(v) for v, _ in models), "Meaning"]
    rows = [[LABELS.get(k, k), *(fmt_ci(block, k) for _, block in models), MEANINGS.get(k, "")]
            for k in keys if any(k in block for _, block in models)]
    return table(header, rows)


def section_rouge(inp: Inputs) -> list[str]:
    lines = ["## ROUGE (literal overlap)", "",
             "F1 of `rouge_score` with stemming on the continuation only, mean over test notes, 95 % "
             "patient-clustered interval in brackets.", ""]
    return lines + _metric_table(inp.eval, list(ROUGE_KEYS)) + [""]


def section_bertscore(inp: Inputs) -> list[str]:
    bert = inp.eval.get("bertscore") or {}
    keys = [*BERTSCORE_KEYS, *(f"{k}_rescaled" for k in BERTSCORE_KEYS)]
    lines = ["## BERTScore (semantic similarity)", "",
             f"Greedy-matched contextual embeddings (encoder `{bert.get('model', '?')}`, "
             f"layer {bert.get('layer', '?')}); raw scores of different encoders are not comparable.", ""]
    return lines + _metric_table(inp.eval, keys) + [""]


def section_likelihood(inp: Inputs) -> list[str]:
    lines = ["## Likelihood of the reference", ""]
    keys = ["bits_per_byte", "word_perplexity", "token_perplexity"]
    if not any(k in block for _, kind, block in eval_systems(inp.eval) if kind == "model" for k in keys):
        return lines + ["Not available: the generations carry no target likelihood.", ""]
    lines += ["Negative log-likelihood of each reference given its prompt, prompt and reference tokenised together. "
              "Bits per byte and per-word perplexity charge every model for the same text, so they compare models "
              "with different tokenizers; per-token perplexity does not (it depends on the tokenizer).", ""]
    return lines + _metric_table(inp.eval, keys) + [""]


def _difference_table(diff: dict[str, Any], keys: list[str], header: str) -> list[str]:
    rows = [[LABELS.get(k, k), fmt_ci(diff, k, signed=True), diff.get(f"{k}_verdict", "–")]
            + ([f"`{diff[f'{k}_baseline']}`"] if f"{k}_baseline" in diff else [])
            for k in keys if k in diff]
    extra = ["Best baseline"] if any(f"{k}_baseline" in diff for k in keys) else []
    return table(["Metric", f"{header} [95 % CI]", "Verdict", *extra], rows)


def section_diff(inp: Inputs) -> list[str]:
    lines = ["## Fine-tuned − pre-trained (paired difference)", ""]
    diff = eval_difference(inp.eval)
    if not diff:
        return lines + ["Not available: both variants must be evaluated.", ""]
    lines += ["The same resampled patients for both; `beats` / `worse`: the interval excludes 0 "
              "(for bits per byte lower is better, so `worse` there means the fine-tuned model predicts better).", ""]
    return lines + _difference_table(diff, [*HEADLINE, "bits_per_byte"], "Fine-tuned − pre-trained") + [""]


def section_baselines(inp: Inputs) -> list[str]:
    m = inp.eval
    lines = ["## Baselines and the claim", "", "Model-free continuations scored the same way on the same test notes:", ""]
    systems = eval_systems(m)
    names = [name for name, kind, _ in systems if kind == "baseline"]
    lines += [f"- `{name}`: {BASELINE_DOC.get(name, 'baseline')}" for name in names] or ["- none were scored"]
    if "copy_forward" in names:
        lines.append(f"  (`copy_forward` fell back to `chance` for {m.get('copy_forward_fallbacks', 0)} notes that are "
                     "their patient's first in the test split.)")
    rows = [[system_name(name), *(fmt_ci(block, k) if k in SUMMARY_METRICS else fmt(block.get(k)) for k in HEADLINE)]
            for name, _, block in systems]
    lines += ["", *table(["System", *(LABELS[k] for k in HEADLINE)], rows), ""]
    claim = eval_difference(m, CLAIM)
    if not claim:
        return lines
    lines += ["### Fine-tuned − best baseline (the claim)", "",
              "For each metric the baseline with the highest score; paired, patient-clustered interval.", ""]
    lines += _difference_table(claim, list(HEADLINE), "Fine-tuned − best baseline") + [""]
    return lines + claim_lines(m) + [""]


def section_study_way(inp: Inputs) -> list[str]:
    study = inp.eval.get("study_way") or {}
    lines = ["## Diagnostic: the study's way of scoring", ""]
    if not study:
        return lines + ["Not available.", ""]
    lines += [study.get("why", ""), ""]
    own = {name: block for name, _, block in eval_systems(inp.eval)}
    keys = ["rouge1", "rouge2", "rougeL", "bertscore_f1"]
    rows = [[system_name(name) if name != "empty" else "empty continuation",
             *(f"{block[k]:.4f} ({own[name][k]:.4f})" if name in own else f"{block[k]:.4f}" for k in keys)]
            for name, block in study["systems"].items()]
    lines += ["Prompt + continuation scored against the whole note; continuation-only in brackets.", ""]
    return lines + table(["System", *(LABELS[k] for k in keys)], rows) + [""]


def section_lengths(inp: Inputs) -> list[str]:
    lengths = inp.eval.get("lengths") or {}
    lines = ["## Lengths", ""]
    if not lengths:
        return lines + ["Not available.", ""]
    cap = lengths.get("cap_words")
    lines += [f"References: {lengths['reference_mean_words']:.1f} words on average. Every continuation, model or "
              f"baseline, is cut at {cap if cap is not None else 'no'} words (data.max_target_words) before scoring.", ""]
    rows = [[system_name(name), f"{block['mean_words']:.1f}", f"{block['mean_words_scored']:.1f}",
             f"{block['stopped_at_budget_share']:.0%}" if "stopped_at_budget_share" in block else "–"]
            for name, block in lengths.items() if isinstance(block, dict)]
    return lines + table(["System", "Words written", "Words scored", "Ran out of generation budget"], rows) + [""]


def section_intervals(inp: Inputs) -> list[str]:
    """Patient-clustered against note-level interval widths: how much the notes' dependence matters."""
    note = inp.eval.get("note_level") or {}
    lines = ["## Why intervals resample patients", ""]
    if not note:
        return lines + ["Not available.", ""]
    lines += ["A patient's notes copy each other forward, so they are not independent. Width of the 95 % interval "
              "of ROUGE-L and BERTScore F1 resampling patients (used everywhere in this report) against treating every "
              "note as independent (shown only for comparison):", ""]
    rows = []
    for name, _, block in eval_systems(inp.eval):
        cells = []
        for k in SUMMARY_METRICS:
            clustered = block[f"{k}_ci_high"] - block[f"{k}_ci_low"]
            iid = note[name][f"{k}_ci_high"] - note[name][f"{k}_ci_low"]
            cells.append(f"{clustered:.4f} vs {iid:.4f}")
        rows.append([system_name(name), *cells])
    return lines + table(["System", *(f"{LABELS[k]}: patients vs notes" for k in SUMMARY_METRICS)], rows) + [""]


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
    if "test_scored_notes" in d:
        lines += [f"{d['test_scored_notes']} test notes are scored; the others are their patients' context (what "
                  "copy-forward and the history may read, never scored).", ""]
    if d.get("leaked_notes"):
        lines += [f"⚠️ **Deliberate leak** (`data.leak_test_patients`): {d['leaked_notes']} context notes of "
                  f"{d['leaked_patients']} test patients are also in train.", ""]
    lines += redundancy_lines(d.get("redundancy") or {})
    dropped = d.get("dropped") or {}
    kept = {k: v for k, v in sorted(dropped.items()) if v}
    if kept:
        lines += table(["Dropped because", "Rows"], [[f"`{k}`", str(v)] for k, v in kept.items()])
    else:
        lines.append("No rows were dropped.")
    return lines + [""]


def redundancy_lines(redundancy: dict[str, Any]) -> list[str]:
    """How much each note repeats the one before it, beside what was measured on MIMIC-III."""
    if not redundancy.get("admission", {}).get("pairs"):
        return []
    rows = [[f"consecutive notes of the same {scope}", str(r["pairs"]), fmt(r["rouge1"]), fmt(r["rougeL"])]
            for scope, r in redundancy.items() if r.get("pairs")]
    return ["Redundancy: ROUGE F1 of each note against the one before it (Searle et al. 2021 measured 43–65 % "
            "between successive MIMIC-III notes):", "", *table(["Pairs", "Sampled", "ROUGE-1", "ROUGE-L"], rows), ""]


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
    lines += section_summary(inp) + section_rouge(inp) + section_bertscore(inp) + section_likelihood(inp)
    lines += section_diff(inp) + section_baselines(inp) + section_study_way(inp) + section_lengths(inp)
    lines += section_intervals(inp) + section_leakage(inp, paths) + section_data(inp, paths)
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
    plt = charts_lib.pyplot()
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
    if warning := charts_lib.fonts_for(name for name, _, _ in eval_systems(inp.eval)):
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
    claim = eval_difference(inp.eval, CLAIM)
    verdicts = {k: claim[f"{k}_verdict"] for k in SUMMARY_METRICS if f"{k}_verdict" in claim}
    log.info("report: wrote %s with %d charts", out / "report.md", len(charts))
    for key, verdict in verdicts.items():
        if verdict != "beats":
            log.warning("report: on %s the fine-tuned model is %s the best baseline (%s)", key,
                        "worse than" if verdict == "worse" else "not distinguishable from", claim[f"{key}_baseline"])
    return {"report": str(out / "report.md"), "charts": sorted(charts.values()), "claim": verdicts}


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
