"""`python -m notelm.readme`: rewrite the generated blocks of README.md and docs/*.md from committed files — the
metrics of the default run, the benchmarks' result files (benchmarks/results/<name>.json), the reproduce
comparison and the GPU plan from params.yaml — never by hand. `--check` changes nothing and exits 1 (naming
the pages) when a block differs from what those files give.

Each generated block sits between `<!-- notelm:<name> -->` and `<!-- /notelm:<name> -->`; a benchmark's table is
the block `bench:<name>`. tests/test_readme.py runs the check, so no figure in README or docs can drift.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from notelm.config.names import (
    CHART_AWARE_CLAIM,
    CHART_AWARE_GAIN,
    CLAIM,
    FACT_ERRORS,
    HEADLINE,
    SUMMARY_METRICS,
    VARIANTS,
    eval_difference,
    eval_systems,
)
from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_open, read_json
from notelm.core.loader import load_params
from notelm.core.paths import (
    DATA_METRICS,
    EVAL_DETAIL,
    FOLLOW_METRICS,
    MEMORIZATION_DETAIL,
    PARAMS_FILE,
    SUGGEST_DETAIL,
)
from notelm.machine import describe
from notelm.plan import card_summary
from notelm.report.facts import extraction_lines
from notelm.report.labels import NAMES, system_name
from notelm.report.markdown import MISSING, fmt, fmt_ci, table
from notelm.report.memorize import memorization_lines
from notelm.report.suggest import follow_lines, suggest_lines
from notelm.reproduce import TRAIN_LOG, training_precision

README = "README.md"
DOCS = "docs"
RESULTS = "benchmarks/results"
REPRODUCE = f"{RESULTS}/reproduce.json"  # `notelm reproduce --save`: a run on one machine against a committed run
BLOCK = re.compile(r"(<!-- notelm:(?P<name>[\w:.-]+) -->\n)(?:.*?\n)?(<!-- /notelm:(?P=name) -->)", re.S)


SAYS = {"better": "is **better** than", "worse": "is **worse** than", "not distinguishable": "is **not distinguishable** from"}

WHO = {"fine-tuned": "model", "chart-aware": "system"}
README_FACTS = ("facts_matched", FACT_ERRORS, "invented_fact_rate", "fact_error_rate")  # the rest: the report
CLAIMS = (("fine-tuned", CLAIM), ("chart-aware", CHART_AWARE_CLAIM))  # who, which difference


def results(detail: dict) -> str:
    """The default run's results: every system per metric, the claims (fine-tuned and chart-aware − the best
    baseline) with their paired intervals and verdicts, and the sentences the metrics support (verdicts, interval
    widths, templating, lengths), each generated."""
    systems = eval_systems(detail)
    claims = [(who, c) for who, key in CLAIMS if (c := eval_difference(detail, key))]
    header = ["metric", *(system_name(name) for name, _, _ in systems), *(f"{who} − best baseline [95 % CI]"
                                                                         for who, _ in claims)]
    rows = []
    for key in (*HEADLINE, *README_FACTS):
        cells = [fmt_ci(block, key) if kind == "model" else fmt(block.get(key), 3) for _, kind, block in systems]
        against = [(f"{fmt_ci(c, key, signed=True)} vs `{c[f'{key}_baseline']}`: **{c[f'{key}_verdict']}**"
                    if key in c else MISSING) for _, c in claims]
        rows.append([NAMES[key], *cells, *against])
    for key, digits in (("bits_per_byte", 3), ("word_perplexity", 1)):
        rows.append([NAMES[key], *(_value_ci(block, key, digits) for _, _, block in systems), *[""] * len(claims)])
    boot = detail["bootstrap"]
    note = (f"{detail['n_examples']} test notes of {boot['clusters']} patients; intervals resample patients "
            f"({boot['samples']} resamples), differences are paired; fact counts are per note, fact rates over the "
            "facts each system wrote (lower is better for errors and invented facts); every fact metric is claimed "
            "against the content baseline, the one matching the most facts per note ([why](docs/claims.md)).")
    verdicts = []
    for who, c in claims:
        said = "; ".join(f"on {NAMES[k]} it {SAYS[c[f'{k}_verdict']]} `{c[f'{k}_baseline']}`"
                         for k in SUMMARY_METRICS if k in c)
        verdicts += [f"Against the best baseline of each summary metric (the content baseline for facts), the {who} "
                     f"{WHO[who]}: {said}.", ""] if said else []
    gain = eval_difference(detail, CHART_AWARE_GAIN)
    said = "; ".join(f"on {NAMES[k]} {fmt_ci(gain, k, signed=True)}, {gain[f'{k}_verdict']}"
                     for k in SUMMARY_METRICS if k in gain)
    verdicts += [f"Against the fine-tuned model alone (paired), the chart-aware system: {said}.", ""] if said else []
    empty = ((detail.get("study_way") or {}).get("systems") or {}).get("empty")
    study = (f"Scored the study's way (prompt + continuation against the whole cleaned note), an *empty* continuation "
             f"gets ROUGE-1 {empty['rouge1']:.3f} and BERTScore F1 {empty['bertscore_f1']:.3f}." if empty else "")
    return "\n".join([*table(header, rows), "", note + (f" **{boot['warning']}.**" if boot.get("warning") else ""),
                      "", *verdicts, *_sentences(detail), study]).rstrip()


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


def bench(name: str, root: Path) -> str:
    """A benchmark's table as its result file records it: what ran where, the rows, and the script's notes."""
    path = root / RESULTS / f"{name}.json"
    if not path.is_file():  # `<script>` or `<script>.<option>`, e.g. train.profile: benchmarks/train.py --profile
        script, _, option = name.partition(".")
        return (f"Not measured yet: `python benchmarks/{script}.py{f' --{option}' if option else ''}` writes "
                f"`{RESULTS}/{name}.json`.")
    r = read_json(path)
    gemm = ", ".join(f"{k} GEMM {v:g} GFLOP/s" for k, v in r["gemm_gflops"].items())
    head = f"`{r['command']}`, {r['date']}, on {describe(r['machine'])}" + (f"; same run: {gemm}" if gemm else "") + "."
    return "\n".join([head, "", *table(r["columns"], r["rows"]), *(["", *r["notes"]] if r["notes"] else [])])


def grid_output(root: Path) -> str:
    """What the test's grid printed on a real Slurm (benchmarks/results/cluster.json, `python benchmarks/cluster.py`):
    the submission, `notelm grid status` once it finished, and `dvc exp show` after `notelm grid collect`."""
    path = root / RESULTS / "cluster.json"
    if not path.is_file():
        return f"Not run yet: `python benchmarks/cluster.py` writes `{RESULTS}/cluster.json`."
    r = read_json(path)
    return "\n".join([f"`{r['command']}`, {r['date']}, on {describe(r['machine'])}; the test's repository is `<repo>`.",
                      "", "`notelm grid --slurm --grid grid.yaml`:", "", "```text", r["submitted"].rstrip(), "```", "",
                      "`notelm grid status`, once no point was pending or running:", "", "```text",
                      r["status"].rstrip(), "```", "", f"`notelm grid collect`, then `{r['show']}`:", "",
                      r["exp_show"].strip()])


def reproduced(r: dict) -> str:
    """What a run on another machine moved against a committed run (the saved `notelm reproduce` comparison)."""
    prec, claims = r["precision"], r["claims"]
    changed = "; ".join(f"`{c['key']}` {c['committed']} → {c['workspace']}" for c in r["detail_changed"]) or "none"
    heads = "; ".join(f"`{c['key']}` {c['committed']} → {c['workspace']}" for c in r["headline_changed"])
    top = ", ".join(f"`{m['key']}` {m['half_widths']:.2f}" for m in r["largest"][:3])
    return (f"`{r['command']}` ({r['date']}) on {describe(r['machine'])}, a run trained in {prec['workspace']} against "
            f"commit {r['rev']}, trained in {prec['committed']}: {r['moved']} of {r['values']} metric values moved; "
            f"headline verdicts {claims['headline'] - len(r['headline_changed'])} of {claims['headline']} equal"
            + (f" ({heads})" if heads else "") + f"; detail verdicts that changed: {changed}."
            + (f" Largest moves, in half-widths of the committed 95 % interval: {top}." if top else ""))


def _json(root: Path, path: str) -> dict:
    return read_json(root / path, hint="run `dvc repro` (or `dvc pull`) first")


def precision(root: Path) -> str:
    """How the committed run trained, from the Trainer's arguments committed with it (dvclive/params.yaml)."""
    log = root / TRAIN_LOG
    return training_precision(log.read_text(encoding="utf-8") if log.is_file() else None) or "an unknown precision"


def _leaves(value) -> list[str]:
    """The dotted keys of a nested mapping's leaves (an empty mapping has none: DVC shows no column for it)."""
    if not isinstance(value, dict):
        return [""]
    return [f"{k}.{leaf}".rstrip(".") for k, v in value.items() for leaf in _leaves(v)]


def _path(entry: str | dict) -> str:
    """The path of a dvc.yaml deps/outs/metrics entry (a string, or a one-key mapping with its options)."""
    return next(iter(entry)) if isinstance(entry, dict) else entry


def _params_read(stages: dict, params: dict) -> set[str]:
    """Every params.yaml leaf the stages list (a listed section counts all of its leaves)."""
    named = set()
    for entry in (e for st in stages.values() for e in st.get("params") or []):
        for key in [entry] if isinstance(entry, str) else list(entry):
            value = params
            for part in key.split("."):
                value = value.get(part, {}) if isinstance(value, dict) else {}
            named |= {f"{key}.{leaf}".rstrip(".") for leaf in _leaves(value)}
    return named


def columns(root: Path) -> str:
    """What `dvc exp show` lists of the committed run — headline values, params the stages read, dependency
    paths — and dvc.lock's length, counted from the committed files."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    heads = sorted({_path(m) for st in stages.values() for m in st.get("metrics") or []})
    values = {h: len(_leaves(read_json(root / h))) for h in heads}
    named = _params_read(stages, load_params(root / PARAMS_FILE))
    deps = {_path(d) for st in stages.values() for d in st.get("deps") or []}
    lock = len((root / "dvc.lock").read_text(encoding="utf-8").splitlines())
    listing = ", ".join(f"`{h}` {n}" for h, n in values.items())
    return (f"The headline files hold {sum(values.values())} values ({listing}); the stages read {len(named)} params "
            f"and list {len(deps)} dependency paths, so `dvc exp show --csv` of the committed run has "
            f"{sum(values.values()) + len(named) + len(deps)} columns of them besides its own few about each run. "
            f"`dvc.lock` has {lock} lines.")


BLOCKS: dict[str, Callable[[Path], str]] = {
    "results": lambda root: results(_json(root, EVAL_DETAIL)),
    "data": lambda root: data(_json(root, DATA_METRICS)),
    "gpus": lambda root: card_summary(load_params(root / PARAMS_FILE)),
    "memorization": lambda root: "\n".join(memorization_lines(_json(root, MEMORIZATION_DETAIL))),
    "suggest": lambda root: "\n".join(suggest_lines(_json(root, SUGGEST_DETAIL))),
    "follow": lambda root: "\n".join(follow_lines(_json(root, FOLLOW_METRICS))),
    "extraction": lambda root: "\n".join(extraction_lines(_json(root, EVAL_DETAIL)["facts"]["extraction"])).rstrip(),
    "columns": columns,
    "grid": grid_output,
    "reproduce": lambda root: (f"The committed run trained in {precision(root)} (`{TRAIN_LOG}`). "
                               + reproduced(_json(root, REPRODUCE))),
}


def render(name: str, root: Path = Path(".")) -> str:
    """Block `name` as the committed files under `root` give it."""
    if name.startswith("bench:"):
        return bench(name.removeprefix("bench:"), root)
    if name not in BLOCKS:
        raise NoteLMError(f"<!-- notelm:{name} --> names no generated block; known: {', '.join(BLOCKS)}, bench:<name>")
    return BLOCKS[name](root)


def update(text: str, root: Path = Path(".")) -> str:
    """`text` (README or a docs page) with every generated block re-rendered."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), root) + "\n" + m.group(3), text)


def pages(root: Path = Path(".")) -> list[Path]:
    """The pages that may hold generated blocks: README.md and docs/*.md."""
    return [root / README, *sorted((root / DOCS).glob("*.md"))]


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of every heading of `page` (code blocks left out)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(root: Path = Path(".")) -> list[str]:
    """`page: target` for every relative link of README and docs whose file or heading does not exist."""
    broken, headings = [], {}  # headings: file -> its anchors, each file parsed once
    for page in pages(root):
        for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # http(s):, mailto: — not ours to check offline
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if file.exists() and anchor and file.suffix == ".md" and file not in headings:
                headings[file] = anchors(file)
            if not file.exists() or (anchor and anchor not in headings.get(file, ())):
                broken.append(f"{page.relative_to(root)}: {target}")
    return broken


def main(argv: list[str] | None = None, root: Path = Path(".")) -> int:
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        new = update(text, root)
        if new != text:
            stale.append(str(page.relative_to(root)))
            if not check:
                with atomic_open(page) as fh:
                    fh.write(new)
    if check and stale:
        print(f"generated blocks differ from the committed files in: {', '.join(stale)}; run `python -m notelm.readme`",
              file=sys.stderr)
    broken = broken_links(root)
    if broken:
        print("broken links (no such file or heading):\n  " + "\n  ".join(broken), file=sys.stderr)
    return 1 if (check and stale) or broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
