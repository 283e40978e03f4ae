"""The memorization audit as Markdown (the report's section and the README's generated block), from the memorize
stage's detail file (metrics/detail/memorization.json). Every sentence is made from the numbers."""

from __future__ import annotations

from typing import Any

from notelm.config.names import GATE, IDENTIFIERS, REFERENCES, VARIANTS
from notelm.report.markdown import MISSING, fmt, fmt_ci, table

SIDE = {"higher": "higher on its train notes than on unseen test notes",
        "lower": "lower on its train notes than on unseen test notes",
        "not distinguishable": "not distinguishable between its train notes and unseen test notes"}
MEASURES = (("exact", "exact reproduction (share of notes)", 3), ("lcs", "longest common token run (tokens)", 2),
            ("rougeL", "ROUGE-L of the continuation", 3))


def _exposure(block: dict[str, Any]) -> tuple[str, str]:
    if "canary_exposure_max" not in block:
        return MISSING, MISSING
    return (f"{block['canary_exposure_max']:.2f} / {block['canary_exposure_mean']:.2f}",
            f"{block['control_exposure_mean']:.2f}")


def _identifiers(block: dict[str, Any]) -> str:
    found = block.get(IDENTIFIERS) or {}
    kinds = ", ".join(f"{kind} {n}" for kind, n in found.items() if kind != "total" and n)
    return f"{found.get('total', 0)}" + (f" ({kinds})" if kinds else "")


def memorization_lines(detail: dict[str, Any]) -> list[str]:
    """The table (pre-trained and fine-tuned side by side), the setting, the fine-tuned model's verdict and the
    gate, as Markdown lines."""
    s, blocks = detail["settings"], [detail.get(v) or {} for v in VARIANTS]
    rows = []
    for key, label, digits in MEASURES:
        rows.append([f"{label}, train notes", *(fmt(b.get(f"{key}_train"), digits) for b in blocks)])
        rows.append([f"{label}, test notes", *(fmt(b.get(f"{key}_test"), digits) for b in blocks)])
        rows.append([f"{label}, train − test [95 % CI]",
                     *(f"{fmt_ci(b, f'{key}_gap', signed=True, digits=digits)} {b.get(f'{key}_gap_verdict', '')}".strip()
                       for b in blocks)])
    planted, controls = zip(*(_exposure(b) for b in blocks))
    rows.append(["canary exposure, planted: max / mean (bits)", *planted])
    rows.append(["canary exposure, never-planted controls: mean (bits)", *controls])
    rows.append(["identifier-like strings in its continuations", *(_identifiers(b) for b in blocks)])
    fine = blocks[1]
    limit = f"{fine['canary_exposure_limit']:.2f}" if "canary_exposure_limit" in fine else MISSING
    refs = detail.get(REFERENCES) or {}
    lines = [*table(["measure", "pre-trained", "fine-tuned"], rows), "",
             f"Each model continues the first {s['prefix_tokens']} tokens of {fine.get('pairs', 0)} test notes and as "
             f"many train notes (each the nearest in token length) for {s['suffix_tokens']} tokens, greedily; intervals "
             f"resample the patients of each split. Exposure ranks each canary among {s['canary_candidates']} random "
             f"secrets of its template (at most {limit} bits; about 1 for a secret never seen). The "
             f"{refs.get('notes', MISSING)} test references themselves hold {_identifiers(refs)} identifier-like "
             "strings (src/notelm/privacy/identifiers.py: patterns, not proof of a leak).", ""]
    if "exact_gap_verdict" in fine:
        lines += [f"The fine-tuned model's exact reproduction is {SIDE[fine['exact_gap_verdict']]} "
                  f"(train − test {fmt_ci(fine, 'exact_gap', signed=True, digits=3)}).", ""]
    problems = [p for msgs in (detail.get("problems") or {}).values() for p in msgs]
    lines.append(f"Gate (`memorize.fail_on`): **{detail.get(GATE)}**" + (f": {'; '.join(problems)}." if problems else "."))
    return lines
