"""Keystroke savings as Markdown (the report's section and the README's generated block), from the suggest stage's
detail file (metrics/detail/suggest.json). Every sentence is made from the numbers."""

from __future__ import annotations

from typing import Any

from notelm.config.names import BEST_PROPOSER, CHART_AWARE, CHOICE, CLAIMANTS, ORACLE, PROPOSERS, VARIANTS
from notelm.report.labels import system_name
from notelm.report.markdown import MISSING, fmt_ci, table

METRICS = (("keystroke_savings", "keystroke savings"), ("ceiling", "ceiling (every suggestion accepted whole)"),
           ("accept_rate", "accept rate"), ("next_word_accuracy", "next-word accuracy"),
           ("mean_accepted_words", "words per accepted suggestion"))
SAYS = {"better": "saves **more** keystrokes than", "worse": "saves **fewer** keystrokes than",
        "not distinguishable": "is **not distinguishable** in keystrokes saved from"}


def suggest_lines(metrics: dict[str, Any]) -> list[str]:
    """The systems side by side with intervals, the setting, each model's and the chart-aware system's paired
    verdict against the best model-free proposer, and the chart-aware threshold with how it was chosen, as
    Markdown lines."""
    systems = [s for s in (*VARIANTS, *PROPOSERS, CHART_AWARE, ORACLE) if s in metrics]
    rows = [[label, *(fmt_ci(metrics[s], key, digits=3) if metrics[s].get(key) is not None else MISSING
                      for s in systems)] for key, label in METRICS]
    lines = [*table(["measure", *(system_name(s) for s in systems)], rows), "",
             f"{metrics['n_examples']} scored test notes of {metrics['clusters']} patients typed word by word; "
             f"suggestions of at most {metrics['max_words']} words; ratios of sums over notes with intervals that "
             "resample patients.", ""]
    for system in CLAIMANTS:
        claim = metrics.get(f"{system}_vs_{BEST_PROPOSER}")
        if claim:
            lines.append(f"- {system_name(system)} {SAYS[claim['keystroke_savings_verdict']]} "
                         f"`{claim['keystroke_savings_baseline']}`, the best model-free proposer: "
                         f"{fmt_ci(claim, 'keystroke_savings', signed=True, digits=3)} of the characters typed.")
    return lines + choice_lines(metrics)


def choice_lines(metrics: dict[str, Any]) -> list[str]:
    """How the chart-aware system chose (its threshold, from validation notes) and what the oracle saves."""
    choice, oracle = metrics.get(CHOICE), metrics.get(ORACLE)
    if not choice:
        return []
    curve = ", ".join(f"{t}: {v:.3f}" for t, v in choice["keystroke_savings_by_threshold"].items())
    shown = ", ".join(f"`{s}` {v:.0%}" for s, v in sorted(choice["shown_from"].items(), key=lambda kv: -kv[1]))
    lines = [f"- `{CHART_AWARE}` shows the candidate with the most keystrokes expected to be saved under the "
             f"fine-tuned model ({choice['precision']}), and nothing when fewer than {choice['threshold']:g} "
             f"keystrokes are expected: the threshold with the highest keystroke savings on {choice['tuning_notes']} "
             f"{choice['chosen_on']} notes (by threshold: {curve}). "
             f"Its suggestions shown came from {shown}."]
    if choice.get("val_keystroke_savings"):
        val = choice["val_keystroke_savings"]
        best = max(val, key=val.get)
        lines.append(f"- On those {choice['chosen_on']} notes the keystroke savings were "
                     + ", ".join(f"{system_name(s)} {v:.3f}" for s, v in val.items())
                     + f": {system_name(best)} saved the most there.")
    if oracle and metrics.get(CHART_AWARE):
        gap = oracle["keystroke_savings"] - metrics[CHART_AWARE]["keystroke_savings"]
        lines.append(f"- `{ORACLE}`, the candidate with the most right words at every boundary, saves "
                     f"{oracle['keystroke_savings']:.3f}, {gap:+.3f} against the rule (greedy per boundary, so not an "
                     "upper bound on what a choice among these candidates can save).")
    return lines


def follow_lines(metrics: dict[str, Any]) -> list[str]:
    """How the chart-aware system's continuations were made (the follow stage's metrics/follow.json): tau, the
    validation notes it was chosen on with every tau's ROUGE-L there, and the share of test tokens copied."""
    if not metrics:
        return []
    curve = ", ".join(f"{t}: {v:.3f}" for t, v in metrics["val_rougeL_by_threshold"].items())
    return [f"`{CHART_AWARE}` continues a note by copying its chart's aligned words while the fine-tuned model gives "
            f"each token at least probability {metrics['threshold']:g}, else writing its own: the tau with the highest "
            f"ROUGE-L on {metrics['tuning_notes']} {metrics['chosen_on']} notes ({curve}); "
            f"{metrics['from_chart']:.0%} of its test tokens came from the chart."]
