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
    FACTS,
    VARIANTS,
    eval_difference,
    eval_systems,
)
from notelm.evaluation.extraction import GROUPS, OVERALL, TARGETS, shortfalls
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


def extraction_lines(measured: dict[str, Any]) -> list[str]:
    """The fact extractor's precision and recall per kind on each labelled set (eval.json facts.extraction), the
    targets, and the targets each set misses, named."""
    sets = list(measured)
    head = ["Facts", *(f"{s.replace('_', '-')} {w}" for s in sets for w in ("P", "R")), "Labelled", "Target (P and R)"]
    rows = [[group, *(fmt(measured[s][group][w], 2) for s in sets for w in ("precision", "recall")),
             " / ".join(str(measured[s][group]["labelled"]) for s in sets),
             fmt(TARGETS[group], 2) if group in TARGETS else ""] for group in [*GROUPS, OVERALL]]
    lines = table(head, rows) + [""]
    for s in sets:
        missed = shortfalls(measured[s])
        lines.append(f"- {s.replace('_', '-')} lines: " + ("every target met." if not missed else
                                                           "targets missed: " + "; ".join(missed) + "."))
    return lines + [""]


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
              f"{fmt(f.get('chart_per_note'), 1)}. Counts are per note, rates over the facts each system wrote, with "
              "patient-clustered intervals; `–`: a system that wrote no fact has no rate.", ""]
    if f.get("extraction"):
        lines += ["The extractor measured on hand-labelled nursing lines (`labels/`, `notelm facts`): the rules were "
                  "fixed on the development lines; the held-out lines were written after that and are never used to "
                  "change them.", ""] + extraction_lines(f["extraction"])
    lines += [f"What the extractor misses: {MISSES}.", ""]
    keys = list(FACT_METRICS)
    rows = [[system_name(n), *(fmt_ci(b, k) if k in b else "–" for k in keys)] for n, b in systems]
    lines += table(["System", *(LABELS[k] for k in keys)], rows) + [""]
    lines += [f"- {LABELS[k]}: {MEANINGS[k]}" for k in keys] + [""]
    claim = eval_difference(m, CLAIM)
    rows = [[LABELS[k], fmt_ci(claim, k, signed=True), claim[f"{k}_verdict"], f"`{claim[f'{k}_baseline']}`"]
            for k in FACT_METRICS if k in claim]
    if rows:
        lines += ["Fine-tuned − the content baseline (paired, patient-clustered; " + VERDICT_DOC + "). The bar for "
                  "every fact metric is one baseline, the one that matches the most facts per note: the lowest rate "
                  "of each kind belongs to whichever baseline states least (a copy of the prompt), and a bar made "
                  "of those is failed by any system that writes new content, whatever it writes.", ""]
        lines += table(["Fact metric", "Fine-tuned − content baseline [95 % CI]", "Verdict", "Baseline"], rows) + [""]
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
