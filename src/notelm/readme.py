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
from notelm.labels import NAMES
from notelm.markdown import MISSING, fmt, fmt_ci, table
from notelm.names import CLAIM, HEADLINE, SUMMARY_METRICS, eval_difference, eval_systems
from notelm.paths import DATA_METRICS, EVAL_DETAIL, PARAMS_FILE
from notelm.plan_tables import card_summary
from notelm.report_sections import system_name

README = "README.md"


def results(detail: dict) -> str:
    """The default run's results: every system per metric, the claim with its paired interval and verdict."""
    systems = eval_systems(detail)
    claim = eval_difference(detail, CLAIM)
    header = ["metric", *(system_name(name) for name, _, _ in systems), "fine-tuned − best baseline [95 % CI]"]
    rows = []
    for key in HEADLINE:
        cells = [fmt_ci(block, key) if kind == "model" else fmt(block[key], 3) for _, kind, block in systems]
        against = (f"{fmt_ci(claim, key, signed=True)} vs `{claim[f'{key}_baseline']}`: **{claim[f'{key}_verdict']}**"
                   if key in claim else MISSING)
        rows.append([NAMES[key], *cells, against])
    for key, digits in (("bits_per_byte", 3), ("word_perplexity", 1)):
        rows.append([NAMES[key], *(_value_ci(block, key, digits) for _, _, block in systems), ""])
    boot = detail["bootstrap"]
    note = (f"{detail['n_examples']} test notes of {boot['clusters']} patients; intervals resample patients "
            f"({boot['samples']} resamples), differences are paired.")
    says = {"beats": "**beats**", "worse": "is **worse** than", "not distinguishable": "is **not distinguishable** from"}
    verdicts = "; ".join(f"on {NAMES[k]} it {says[claim[f'{k}_verdict']]} `{claim[f'{k}_baseline']}`"
                         for k in SUMMARY_METRICS if k in claim)
    verdict = f"Against the best baseline of each summary metric, the fine-tuned model: {verdicts}." if verdicts else ""
    empty = ((detail.get("study_way") or {}).get("systems") or {}).get("empty")
    study = (f"Scored the study's way (prompt + continuation against the whole note), an *empty* continuation gets "
             f"ROUGE-1 {empty['rouge1']:.3f} and BERTScore F1 {empty['bertscore_f1']:.3f}." if empty else "")
    return "\n".join([*table(header, rows), "", note + (f" **{boot['warning']}.**" if boot.get("warning") else ""),
                      "", verdict, "", study]).rstrip()


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
              f"{redundancy['patient']['rougeL']:.2f}) — inside the 43–65 % Searle et al. (2021) measured between "
              "successive MIMIC-III notes."]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[str, Callable[[dict], str]]] = {"results": (EVAL_DETAIL, results), "data": (DATA_METRICS, data),
                                                        "gpus": (PARAMS_FILE, card_summary)}


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
