"""The report's sections on what a completion states: what each system reads, fact fidelity, and templating.

Pure formatting of eval.json's `facts`, fact metrics and `templating` (and, for the repeated n-grams, of the
generations the report stage read: note text, which stays in the git-ignored report). Used by
report.sections.render_markdown.
"""

from __future__ import annotations

from typing import Any

from notelm.config.names import (
    BASELINE_READS,
    CLAIM,
    FACT_METRICS,
    FACT_RATES,
    FACTS,
    VARIANTS,
    eval_difference,
    eval_systems,
)
from notelm.evaluation.facts import MISSES
from notelm.evaluation.templating import repeated_ngrams
from notelm.report.labels import LABELS, MEANINGS, READS, VERDICT_DOC, system_name
from notelm.report.markdown import fmt, fmt_ci, md_text, table

MODEL_READS = {VARIANTS[0]: ("prompt",), VARIANTS[1]: ("prompt", "train")}  # with data.history, also the chart


def reads_table(metrics: dict[str, Any], history: int | None) -> list[str]:
    """Which inputs each scored system reads: the scored note's prompt, the patient's earlier notes, the train split."""
    rows = []
    for name, kind, _ in eval_systems(metrics):
        reads = MODEL_READS.get(name, ("prompt",)) if kind == "model" else BASELINE_READS.get(name, ())
        chart = "chart" in reads or (kind == "model" and bool(history))
        rows.append([system_name(name), *("✓" if on else "" for on in ("prompt" in reads, chart, "train" in reads))])
    head = ["System", READS["prompt"], READS["chart"] + (" (data.history)" if history else ""), READS["train"]]
    return table(head, rows)


def section_facts(inp) -> list[str]:
    m = inp.eval
    lines = ["## Facts a completion states", ""]
    systems = [(n, b) for n, _, b in eval_systems(m) if FACTS in b]
    if not systems:
        return lines + ["Not available: this eval.json has no fact counts.", ""]
    f = m.get("facts") or {}
    lines += ["Clinical facts (vital signs with values, oxygen device, flow and FiO2, drips and medications with "
              "doses, lines/tubes/drains and findings, each present or negated) extracted by rules "
              "(`src/notelm/evaluation/facts.py`) from every continuation, and sorted against the note's whole real rest and "
              "the chart (the prompt and the patient's earlier notes of the test split). "
              f"The references state {fmt(f.get('reference_per_note'), 1)} facts per note, the charts "
              f"{fmt(f.get('chart_per_note'), 1)}. Rates are over the facts each system wrote, with patient-clustered "
              "intervals; `–`: a system that wrote no fact has no rate.", "",
              f"What the extractor misses: {MISSES}.", ""]
    keys = list(FACT_METRICS)
    rows = [[system_name(n), *(fmt_ci(b, k) if k in b else "–" for k in keys)] for n, b in systems]
    lines += table(["System", *(LABELS[k] for k in keys)], rows) + [""]
    lines += [f"- {LABELS[k]}: {MEANINGS[k]}" for k in keys] + [""]
    claim = eval_difference(m, CLAIM)
    rows = [[LABELS[k], fmt_ci(claim, k, signed=True), claim[f"{k}_verdict"], f"`{claim[f'{k}_baseline']}`"]
            for k in FACT_RATES if k in claim]
    if rows:
        lines += ["Fine-tuned − the best baseline of each rate (paired, patient-clustered; " + VERDICT_DOC + "):", ""]
        lines += table(["Rate", "Fine-tuned − best baseline [95 % CI]", "Verdict", "Best baseline"], rows) + [""]
    return lines


def section_templating(inp, top: int = 5) -> list[str]:
    t = inp.eval.get("templating") or {}
    lines = ["## Templating: do continuations of different patients look alike?", ""]
    if not t:
        return lines + ["Not available.", ""]
    lines += [f"Mean ROUGE-L between the texts of two different patients, over {t.get('pairs')} pairs of test notes; "
              "the references' own value is what the ward's notes share.", ""]
    rows = [["References", fmt(t.get("reference"))]]
    rows += [[system_name(name), fmt(t.get(name))] for name, _, _ in eval_systems(inp.eval) if name in t]
    lines += table(["Texts", "Cross-patient ROUGE-L"], rows) + [""]
    if inp.generations:
        first = next(iter(inp.generations.values()))
        texts = {"References": [g.get("reference", "") for g in first]}
        texts.update({system_name(name): [g.get("completion", "") for g in rows_] for name, rows_ in inp.generations.items()})
        lines += [f"Word 4-grams found in the most texts (note text: this report stays out of git), of {len(first)}:", ""]
        grams = [[name, "; ".join(f"{md_text(g)} ({c})" for g, c in repeated_ngrams(ts, top=top)) or "none repeated"]
                 for name, ts in texts.items()]
        lines += table(["Texts", "Most repeated 4-grams (texts holding each)"], grams) + [""]
    return lines
