"""The memorization audit as Markdown (the report's section and the README's generated block), from the memorize
stage's detail file (metrics/detail/memorization.json). Every sentence is made from the numbers."""

from __future__ import annotations

from typing import Any

from notelm.config.names import GATE, IDENTIFIERS, REFERENCES, VARIANTS
from notelm.report.markdown import MISSING, fmt, fmt_ci, table

SIDE = {"higher": "higher on its train notes than on unseen test notes",
        "lower": "lower on its train notes than on unseen test notes",
        "not distinguishable": "not distinguishable between its train notes and unseen test notes"}
MEASURES = (("exact", "exact reproduction (share of windows)", 3), ("lcs", "longest common token run (tokens)", 2),
            ("rougeL", "ROUGE-L of the continuation", 3))


def _exposure(block: dict[str, Any]) -> tuple[str, str, str]:
    if "canary_exposure_mean" not in block:
        return MISSING, MISSING, MISSING
    return (f"{block['canary_exposure_mean']:.2f} (max {block['canary_exposure_max']:.2f})",
            f"{block['control_exposure_mean']:.2f}",
            f"{fmt_ci(block, 'canary_gap', signed=True, digits=2)}; upper bound {fmt(block.get('canary_gap_upper'), 2)}"
            if "canary_gap" in block else MISSING)


def _identifiers(block: dict[str, Any]) -> str:
    found = block.get(IDENTIFIERS) or {}
    kinds = ", ".join(f"{kind} {n}" for kind, n in found.items() if kind != "total" and n)
    return f"{found.get('total', 0)}" + (f" ({kinds})" if kinds else "")


def _setting(detail: dict[str, Any]) -> str:
    """How the windows were drawn and matched, and what exposure is measured against."""
    s, match, fine = detail["settings"], detail.get("matching") or {}, detail.get(VARIANTS[1]) or {}
    limit = f"{fine['canary_exposure_limit']:.2f}" if "canary_exposure_limit" in fine else MISSING
    refs = detail.get(REFERENCES) or {}
    offsets = ", ".join(f"{o}: {n}" for o, n in (match.get("offsets") or {}).items())
    return (f"Each model continues {s['prefix_tokens']} tokens of {match.get('pairs', MISSING)} windows of test notes "
            f"and as many of train notes for {s['suffix_tokens']} tokens, greedily: up to {s.get('positions', 1)} "
            f"windows a note (pairs by offset {offsets}), a train window only where its tokens lay inside one "
            f"training block, each test window paired with a train window at the same offset that the pre-trained "
            f"model finds as predictable (its suffix NLL {fmt(match.get('base_suffix_nll_train'), 2)} on the train "
            f"side, {fmt(match.get('base_suffix_nll_test'), 2)} on the test side, nats a token; of "
            f"{match.get('train_windows_available', MISSING)} train and {match.get('test_windows_available', MISSING)} "
            f"test windows available). Intervals resample the patients of each split. Exposure ranks each of "
            f"{fine.get('canaries', MISSING)} planted canaries and as many never-planted controls among "
            f"{s['canary_candidates']} random secrets of its template (at most {limit} bits; about 1.4 on average "
            f"for a secret never seen). The {refs.get('notes', MISSING)} test references themselves hold "
            f"{_identifiers(refs)} identifier-like strings (src/notelm/privacy/identifiers.py: patterns, not proof "
            "of a leak).")


def _power(detail: dict[str, Any]) -> str:
    """Whether each gated interval is narrower than its limit (the gate could tell under from over)."""
    rows = [f"`{key}` ±{p['half_width']:.3g} against {p['limit']:g}"
            + ("" if p["narrower_than_limit"] else " (**wider than its limit**)")
            for key, p in (detail.get("power") or {}).items()]
    return ("The gate reads one-sided 95 % upper bounds; its intervals' half-widths beside their limits: "
            + "; ".join(rows) + ".") if rows else ""


def memorization_lines(detail: dict[str, Any]) -> list[str]:
    """The table (pre-trained and fine-tuned side by side), the setting, the fine-tuned model's verdict, the
    gate's power and the gate, as Markdown lines."""
    blocks = [detail.get(v) or {} for v in VARIANTS]
    rows = []
    for key, label, digits in MEASURES:
        rows.append([f"{label}, train windows", *(fmt(b.get(f"{key}_train"), digits) for b in blocks)])
        rows.append([f"{label}, test windows", *(fmt(b.get(f"{key}_test"), digits) for b in blocks)])
        rows.append([f"{label}, train − test [95 % CI]; one-sided upper bound",
                     *(f"{fmt_ci(b, f'{key}_gap', signed=True, digits=digits)} {b.get(f'{key}_gap_verdict', '')}; "
                       f"{fmt(b.get(f'{key}_gap_upper'), digits)}" if f"{key}_gap" in b else MISSING for b in blocks)])
    planted, controls, gaps = zip(*(_exposure(b) for b in blocks))
    rows.append(["canary exposure, planted: mean (max), bits", *planted])
    rows.append(["canary exposure, never-planted controls: mean, bits", *controls])
    rows.append(["canary exposure, planted − controls [95 % CI]; upper bound", *gaps])
    rows.append(["identifier-like strings in its continuations", *(_identifiers(b) for b in blocks)])
    rows.append(["test continuations writing the canary template's words / a secret",
                 *(f"{x['template']} / {x['secret']} of {x['continuations']}" if (x := b.get("canary_leaks")) else
                   MISSING for b in blocks)])
    fine = blocks[1]
    lines = [*table(["measure", "pre-trained", "fine-tuned"], rows), "", _setting(detail), ""]
    said = [f"its {label.split(' (')[0]} is {SIDE[fine[f'{key}_gap_verdict']]} (train − test "
            f"{fmt_ci(fine, f'{key}_gap', signed=True, digits=digits)})"
            for key, label, digits in MEASURES[:2] if f"{key}_gap_verdict" in fine]
    if said:
        lines += ["For the fine-tuned model " + "; ".join(said) + ".", ""]
    if power_ := _power(detail):
        lines += [power_, ""]
    problems = [p for msgs in (detail.get("problems") or {}).values() for p in msgs]
    lines.append(f"Gate (`memorize.fail_on`): **{detail.get(GATE)}**" + (f": {'; '.join(problems)}." if problems else "."))
    return lines
