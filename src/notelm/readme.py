"""`python -m notelm.readme`: rewrite the README's result tables from the committed metrics (and the GPU plan
from params.yaml), never by hand.

Each generated block sits between `<!-- notelm:<name> -->` and `<!-- /notelm:<name> -->` in README.md;
tests/test_readme.py fails when a block differs from what the committed metrics give, so the README's
numbers cannot drift from `metrics/`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from notelm.config.loader import load_params
from notelm.files import read_json
from notelm.labels import NAMES, system_name
from notelm.markdown import MISSING, fmt, fmt_ci, table
from notelm.names import CLAIM, FACT_METRICS, HEADLINE, SUMMARY_METRICS, VARIANTS, eval_difference, eval_systems
from notelm.paths import DATA_METRICS, EVAL_DETAIL, MEMORIZATION_DETAIL, PARAMS_FILE, SUGGEST_METRICS
from notelm.plan_tables import card_summary
from notelm.report_memorization import memorization_lines
from notelm.report_suggest import suggest_lines

README = "README.md"


SAYS = {"better": "is **better** than", "worse": "is **worse** than", "not distinguishable": "is **not distinguishable** from"}


def results(detail: dict) -> str:
    """The default run's results: every system per metric, the claim with its paired interval and verdict, and
    the sentences the metrics support (verdicts, interval widths, templating, lengths), each generated."""
    systems = eval_systems(detail)
    claim = eval_difference(detail, CLAIM)
    header = ["metric", *(system_name(name) for name, _, _ in systems), "fine-tuned − best baseline [95 % CI]"]
    rows = []
    for key in (*HEADLINE, *FACT_METRICS):
        cells = [fmt_ci(block, key) if kind == "model" else fmt(block.get(key), 3) for _, kind, block in systems]
        against = (f"{fmt_ci(claim, key, signed=True)} vs `{claim[f'{key}_baseline']}`: **{claim[f'{key}_verdict']}**"
                   if key in claim else MISSING)
        rows.append([NAMES[key], *cells, against])
    for key, digits in (("bits_per_byte", 3), ("word_perplexity", 1)):
        rows.append([NAMES[key], *(_value_ci(block, key, digits) for _, _, block in systems), ""])
    boot = detail["bootstrap"]
    note = (f"{detail['n_examples']} test notes of {boot['clusters']} patients; intervals resample patients "
            f"({boot['samples']} resamples), differences are paired; fact rates are over the facts each system "
            "wrote (lower is better for invented facts and fact errors).")
    verdicts = "; ".join(f"on {NAMES[k]} it {SAYS[claim[f'{k}_verdict']]} `{claim[f'{k}_baseline']}`"
                         for k in SUMMARY_METRICS if k in claim)
    verdict = f"Against the best baseline of each summary metric, the fine-tuned model: {verdicts}." if verdicts else ""
    empty = ((detail.get("study_way") or {}).get("systems") or {}).get("empty")
    study = (f"Scored the study's way (prompt + continuation against the whole cleaned note), an *empty* continuation "
             f"gets ROUGE-1 {empty['rouge1']:.3f} and BERTScore F1 {empty['bertscore_f1']:.3f}." if empty else "")
    return "\n".join([*table(header, rows), "", note + (f" **{boot['warning']}.**" if boot.get("warning") else ""),
                      "", verdict, "", *_sentences(detail), study]).rstrip()


def _sentences(detail: dict) -> list[str]:
    """Interval widths, templating and lengths, as the metrics give them (each a paragraph, then a blank line)."""
    out = []
    fine = (detail.get("models") or {}).get(VARIANTS[1]) or {}
    note = (detail.get("note_level") or {}).get(VARIANTS[1]) or {}
    if "rougeL_ci_low" in fine and "rougeL_ci_low" in note:
        clustered, iid = fine["rougeL_ci_high"] - fine["rougeL_ci_low"], note["rougeL_ci_high"] - note["rougeL_ci_low"]
        wider = "wider" if clustered > iid else "narrower" if clustered < iid else "as wide"
        out += [f"For the fine-tuned model's ROUGE-L the patient-clustered interval is {clustered:.3f} wide, {wider} "
                f"than the note-level one ({iid:.3f}), which treats notes of one patient as independent.", ""]
    t = detail.get("templating") or {}
    if t.get("reference") is not None:
        sims = ", ".join(f"{system_name(n)} {t[n]:.3f}" for n, _, _ in eval_systems(detail) if t.get(n) is not None)
        out += [f"Continuations of different patients resemble each other at mean ROUGE-L {sims}; the references "
                f"of different patients at {t['reference']:.3f} ({t['pairs']} pairs).", ""]
    lengths = detail.get("lengths") or {}
    short = [f"{system_name(v)} {lengths[v]['short']}" + (" (" + ", ".join(f"{k} {n}" for k, n in by.items() if n) + ")"
                                                          if (by := lengths[v].get("short_by")) and any(by.values()) else "")
             for v in VARIANTS if isinstance(lengths.get(v), dict) and "short" in lengths[v]]
    if short:
        out += [f"Continuations with fewer words than their reference (of {detail['n_examples']}), and why they "
                f"stopped: {'; '.join(short)}.", ""]
    return out


def _value_ci(block: dict, key: str, digits: int) -> str:
    return fmt_ci(block, key, digits=digits) if key in block else ""


def data(metrics: dict) -> str:
    """The default corpus: patients and notes per split, scored test notes, and its redundancy beside MIMIC-III's."""
    rows = [[split, str(metrics[split]["patients"]), str(metrics[split]["notes"])] for split in ("train", "val", "test")]
    redundancy = metrics["redundancy"]
    lines = table(["split", "patients", "notes"], rows)
    lines += ["", f"{metrics['test_scored_notes']} of the {metrics['test']['notes']} test notes are scored (each test "
              "patient's 2nd, 4th, ... note; the others are context). A note repeats the one before it in the same "
              f"admission at ROUGE-1 {redundancy['admission']['rouge1']:.2f} / ROUGE-L {redundancy['admission']['rougeL']:.2f} "
              f"({redundancy['admission']['pairs']} pairs; same patient: {redundancy['patient']['rouge1']:.2f} / "
              f"{redundancy['patient']['rougeL']:.2f}) — ROUGE-1 {_against_searle(redundancy['admission']['rouge1'])} "
              "the 43–65 % Searle et al. (2021) measured between successive MIMIC-III notes."]
    return "\n".join(lines)


def _against_searle(value: float) -> str:
    return "inside" if 0.43 <= value <= 0.65 else "below" if value < 0.43 else "above"


BLOCKS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "results": (EVAL_DETAIL, results), "data": (DATA_METRICS, data), "gpus": (PARAMS_FILE, card_summary),
    "memorization": (MEMORIZATION_DETAIL, lambda detail: "\n".join(memorization_lines(detail))),
    "suggest": (SUGGEST_METRICS, lambda metrics: "\n".join(suggest_lines(metrics))),
}


def render(name: str, root: Path = Path(".")) -> str:
    """Block `name` as the committed metrics (or params.yaml) under `root` give it."""
    path, make = BLOCKS[name]
    if path == PARAMS_FILE:
        return make(load_params(root / path))
    return make(read_json(root / path, hint="run `dvc repro` (or `dvc pull`) first"))


def update(text: str, root: Path = Path(".")) -> str:
    """`text` (a README) with every generated block re-rendered."""
    for name in BLOCKS:
        pattern = re.compile(rf"(<!-- notelm:{name} -->\n)(?:.*?\n)?(<!-- /notelm:{name} -->)", re.S)
        text = pattern.sub(lambda m, name=name: m.group(1) + render(name, root) + "\n" + m.group(2), text)
    return text


def main() -> int:
    readme = Path(README)
    new = update(readme.read_text(encoding="utf-8"))
    if "--check" in sys.argv[1:]:
        return 0 if new == readme.read_text(encoding="utf-8") else 1
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
