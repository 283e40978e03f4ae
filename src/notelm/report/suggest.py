"""Keystroke savings as Markdown (the report's section and the README's generated block), from the suggest stage's
detail file (metrics/detail/suggest.json). Every sentence is made from the numbers."""

from __future__ import annotations

from typing import Any

from notelm.config.names import BEST_PROPOSER, PROPOSERS, VARIANTS
from notelm.report.labels import system_name
from notelm.report.markdown import MISSING, fmt_ci, table

METRICS = (("keystroke_savings", "keystroke savings"), ("ceiling", "ceiling (every suggestion accepted whole)"),
           ("accept_rate", "accept rate"), ("next_word_accuracy", "next-word accuracy"),
           ("mean_accepted_words", "words per accepted suggestion"))
SAYS = {"better": "saves **more** keystrokes than", "worse": "saves **fewer** keystrokes than",
        "not distinguishable": "is **not distinguishable** in keystrokes saved from"}


def suggest_lines(metrics: dict[str, Any]) -> list[str]:
    """The systems side by side with intervals, the setting, and each model's paired verdict against the best
    model-free proposer, as Markdown lines."""
    systems = [s for s in (*VARIANTS, *PROPOSERS) if s in metrics]
    rows = [[label, *(fmt_ci(metrics[s], key, digits=3) if metrics[s].get(key) is not None else MISSING
                      for s in systems)] for key, label in METRICS]
    lines = [*table(["measure", *(system_name(s) for s in systems)], rows), "",
             f"{metrics['n_examples']} scored test notes of {metrics['clusters']} patients typed word by word; "
             f"suggestions of at most {metrics['max_words']} words; ratios of sums over notes with intervals that "
             "resample patients.", ""]
    for variant in VARIANTS:
        claim = metrics.get(f"{variant}_vs_{BEST_PROPOSER}")
        if claim:
            lines.append(f"- {system_name(variant)} {SAYS[claim['keystroke_savings_verdict']]} "
                         f"`{claim['keystroke_savings_baseline']}`, the best model-free proposer: "
                         f"{fmt_ci(claim, 'keystroke_savings', signed=True, digits=3)} of the characters typed.")
    return lines
