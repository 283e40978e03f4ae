"""The report's Markdown: one function per section of `reports/report.md`, from the inputs the report stage read.

Pure formatting of what the stage gives it (an `Inputs`, the `report:` params, the paths it read for the
"not available" lines, and the charts it drew); nothing here reads or writes a file. Every verdict ("better",
"not distinguishable", "worse", in the metric's better direction) is read from a paired, patient-clustered
interval of eval.json, never from overlapping marginal ones; no sentence here states a result by hand. Used by the report stage (stages/report.py); readme.py names systems as the
report does (`system_name`). Table cells come from notelm.report.markdown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from notelm.config.names import (
    BERTSCORE_KEYS,
    CHART_AWARE_CLAIM,
    CLAIM,
    FACT_METRICS,
    HEADLINE,
    LIKELIHOOD,
    ROUGE_KEYS,
    SUMMARY_METRICS,
    eval_difference,
    eval_systems,
)
from notelm.config.report import ReportParams
from notelm.report.facts import reads_table, section_facts, section_templating
from notelm.report.labels import BASELINE_DOC, LABELS, MEANINGS, NAMES, VARIANT_NAMES, VERDICT_DOC, system_name
from notelm.report.markdown import fmt, fmt_ci, md_text, table, tail, truncate
from notelm.report.memorize import memorization_lines
from notelm.report.suggest import follow_lines, suggest_lines

LEAKAGE_DOC = {
    "subject_overlap": "patients with notes in both splits",
    "admission_overlap": "admissions in both splits",
    "exact_dup_test_in_train": "notes whose whole text is also a train note",
    "near_dup_test_in_train": "notes with a near-duplicate train note (MinHash Jaccard)",
    "target_in_train": "targets found verbatim inside a train note",
}


@dataclass
class Inputs:
    """Everything the report shows; optional parts are None when their file is missing."""

    eval: dict[str, Any]
    data: dict[str, Any] | None = None
    leakage: dict[str, Any] | None = None
    memorization: dict[str, Any] | None = None
    suggest: dict[str, Any] | None = None
    follow: dict[str, Any] | None = None  # the chart-aware continuations' tau (metrics/follow.json)
    per_example: list[dict[str, Any]] | None = None
    generations: dict[str, list[dict[str, Any]]] | None = None
    loss: dict[str, list[tuple[float, float]]] | None = None  # {"train": [(step, loss)], "val": [...]}
    live_metrics: dict[str, Any] | None = None
    run_info: dict[str, Any] | None = None  # model, source, method, raw_path, synthetic, split_by, fraction, history


class SourcePaths(Protocol):
    """The input paths a section names when its input is missing: the report stage's `Paths`."""

    @property
    def data_metrics(self) -> str: ...
    @property
    def leakage(self) -> str: ...
    @property
    def memorization(self) -> str: ...
    @property
    def suggest(self) -> str: ...
    @property
    def per_example(self) -> str: ...
    @property
    def generations(self) -> tuple[str, ...]: ...
    @property
    def live(self) -> str: ...


def claim_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines stating, per summary metric, what the paired clustered interval of fine-tuned − best
    baseline says (and of chart-aware − best baseline, when that system was scored): better than the strongest
    baseline, not distinguishable from it, or worse (a warning) — in the metric's better direction."""
    lines = []
    for who, key_ in (("the fine-tuned model", CLAIM), ("the chart-aware system", CHART_AWARE_CLAIM)):
        claim = eval_difference(metrics, key_)
        for key in (k for k in SUMMARY_METRICS if k in claim):
            name, verdict = NAMES[key], claim[f"{key}_verdict"]
            against = f"the best baseline, `{claim[f'{key}_baseline']}`: {fmt_ci(claim, key, signed=True)}"
            if verdict == "better":
                lines.append(f"- {name}: {who} is **better** than {against}.")
            elif verdict == "worse":
                lines.append(f"- ⚠️ **WARNING: on {name} {who} is worse than** {against}.")
            else:
                lines.append(f"- {name}: {who} is **not distinguishable** from {against}.")
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
    keys = list(LIKELIHOOD)
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
    lines += [f"The same resampled patients for both; {VERDICT_DOC}.", ""]
    keys = [*HEADLINE, "bits_per_byte", *FACT_METRICS]
    return lines + _difference_table(diff, keys, "Fine-tuned − pre-trained") + [""]


def section_baselines(inp: Inputs) -> list[str]:
    m = inp.eval
    lines = ["## Baselines and the claim", "", "Model-free continuations scored the same way on the same test notes:", ""]
    systems = eval_systems(m)
    names = [name for name, kind, _ in systems if kind == "baseline"]
    lines += [f"- `{name}`: {BASELINE_DOC.get(name, 'baseline')}" for name in names] or ["- none were scored"]
    if {"copy_forward", "aligned_copy"} & set(names):
        lines.append(f"  (the chart baselines fell back to `chance` for {m.get('chart_fallbacks', 0)} notes that are "
                     "their patient's first in the test split.)")
    lines += ["", "What each system reads:", "", *reads_table(m, (inp.run_info or {}).get("history"))]
    rows = [[system_name(name), *(fmt_ci(block, k) if k in SUMMARY_METRICS else fmt(block.get(k)) for k in HEADLINE)]
            for name, _, block in systems]
    lines += ["", *table(["System", *(LABELS[k] for k in HEADLINE)], rows), ""]
    claim = eval_difference(m, CLAIM)
    if not claim:
        return lines
    lines += ["### Fine-tuned − best baseline (the claim)", "",
              f"For each metric the baseline with the best score; paired, patient-clustered interval; {VERDICT_DOC}.", ""]
    lines += _difference_table(claim, [*HEADLINE, *FACT_METRICS], "Fine-tuned − best baseline") + [""]
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
    lines += ["Prompt + continuation scored against the whole cleaned note (uncapped); continuation-only in brackets.", ""]
    return lines + table(["System", *(LABELS[k] for k in keys)], rows) + [""]


def section_lengths(inp: Inputs) -> list[str]:
    lengths = inp.eval.get("lengths") or {}
    lines = ["## Lengths", ""]
    if not lengths:
        return lines + ["Not available.", ""]
    cap = lengths.get("cap_words")
    lines += [f"References: {lengths['reference_mean_words']:.1f} words on average. Every continuation, model or "
              f"baseline, is cut at {cap if cap is not None else 'no'} words (data.max_target_words) before scoring; "
              "a model stops at that cap, at its end token, or when its token budget runs out. *Short*: "
              "continuations with fewer words than their reference, and for a model why it stopped.", ""]
    rows = [[system_name(name), f"{block['mean_words']:.1f}", f"{block['mean_words_scored']:.1f}",
             str(block.get("short", "–")),
             ", ".join(f"{why} {n}" for why, n in (block.get("short_by") or {}).items() if n) or "–"]
            for name, block in lengths.items() if isinstance(block, dict)]
    return lines + table(["System", "Words written", "Words scored", "Short", "Short because"], rows) + [""]


def section_intervals(inp: Inputs) -> list[str]:
    """Patient-clustered against note-level interval widths: how much the notes' dependence matters."""
    note = inp.eval.get("note_level") or {}
    lines = ["## Why intervals resample patients", ""]
    if not note:
        return lines + ["Not available.", ""]
    lines += ["A patient's notes copy each other forward, so they are not independent. Width of the 95 % interval "
              "of ROUGE-L and BERTScore F1 resampling patients (used everywhere in this report) against treating every "
              "note as independent (shown only for comparison):", ""]
    keys = [k for k in SUMMARY_METRICS if any(f"{k}_ci_low" in block for block in note.values())]
    rows = []
    for name, _, block in eval_systems(inp.eval):
        cells = []
        for k in keys:
            clustered = block[f"{k}_ci_high"] - block[f"{k}_ci_low"]
            iid = note[name][f"{k}_ci_high"] - note[name][f"{k}_ci_low"]
            cells.append(f"{clustered:.4f} vs {iid:.4f}")
        rows.append([system_name(name), *cells])
    return lines + table(["System", *(f"{LABELS[k]}: patients vs notes" for k in keys)], rows) + [""]


def section_suggest(inp: Inputs, paths: SourcePaths) -> list[str]:
    lines = ["## Completion as a nurse uses it: keystrokes saved while typing", ""]
    if not inp.suggest:
        return lines + [f"Not available: `{paths.suggest}` not found (run `dvc repro suggest`).", ""]
    return lines + suggest_lines(inp.suggest) + [""] + follow_lines(inp.follow or {}) + ([""] if inp.follow else [])


def section_memorization(inp: Inputs, paths: SourcePaths) -> list[str]:
    lines = ["## Does the model give its training notes back?", ""]
    if not inp.memorization:
        return lines + [f"Not available: `{paths.memorization}` not found (run `dvc repro memorize`).", ""]
    return lines + memorization_lines(inp.memorization) + [""]


def section_leakage(inp: Inputs, paths: SourcePaths) -> list[str]:
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


def section_data(inp: Inputs, paths: SourcePaths) -> list[str]:
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


def section_training(inp: Inputs, paths: SourcePaths, charts: dict[str, str]) -> list[str]:
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


def section_completions(inp: Inputs, cfg: ReportParams, paths: SourcePaths) -> list[str]:
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


def section_charts(inp: Inputs, paths: SourcePaths, charts: dict[str, str]) -> list[str]:
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


def render_markdown(inp: Inputs, cfg: ReportParams, paths: SourcePaths, charts: dict[str, str]) -> str:
    """The whole report as Markdown; `charts` maps chart name → file name relative to the report."""
    lines = ["# NoteLM report", ""]
    lines += section_summary(inp) + section_rouge(inp) + section_bertscore(inp) + section_likelihood(inp)
    lines += section_diff(inp) + section_baselines(inp) + section_facts(inp) + section_templating(inp)
    lines += section_suggest(inp, paths)
    lines += section_study_way(inp) + section_lengths(inp)
    lines += section_intervals(inp) + section_leakage(inp, paths) + section_memorization(inp, paths)
    lines += section_data(inp, paths)
    lines += section_training(inp, paths, charts) + section_completions(inp, cfg, paths)
    lines += section_charts(inp, paths, charts)
    return "\n".join(lines).rstrip() + "\n"
