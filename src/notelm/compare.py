"""`notelm compare`: the cross-model table (models × pre-trained/fine-tuned × metrics) over DVC experiments.

Reads `dvc exp show --json` (the workspace, the baseline commit(s) and their experiments; with
`--all-branches` / `--all-commits` every branch tip / commit too) for each run's params, and each run's
metrics/detail/eval.json from git (`git show <rev>:...`; experiments are git commits, and the detail file
is git-tracked) or the workspace, and writes to `--out-dir` (default `compare/`; not `reports/`, which the
report stage owns and replaces whole):

    compare.md    the table as Markdown (also printed)
    compare.csv   the same rows with every metric's 95 % interval, encoder and run names
    radar.png     one line per model variant over the seven headline metrics

A row is one (variant, model) result: the pre-trained model, the fine-tuned model, or a
model-free baseline. Runs with identical results share a row (the pre-trained scores of one
model repeat in every experiment that fine-tunes it differently; the workspace usually repeats
the last run), and the row's `runs` column names them all. Runs without metrics (queued,
failed, not yet evaluated) are listed below the table as skipped.

The radar chart is drawn with matplotlib on one shared 0–1 scale: `evaluate.visualization.radar_plot`
rescales every axis to the spread of its values (which exaggerates small differences) and fails
under pandas 3 (`data.loc[(name,)]`), so it is not used.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from notelm.arena import leaderboard_markdown
from notelm.config.models import model_row
from notelm.config.names import FACT_PER_NOTE, FACT_RATES, FACTS, HEADLINE, VARIANTS, direction, eval_systems
from notelm.config.train import TrainParams
from notelm.core.errors import NoteLMError, ParamsError
from notelm.core.files import atomic_open
from notelm.core.loader import load_section
from notelm.core.paths import EVAL_DETAIL, PER_EXAMPLE
from notelm.report import plotting
from notelm.report.labels import LABELS, VARIANT_NAMES
from notelm.report.markdown import MISSING, fmt, table

GROUP_ORDER = {v: i for i, v in enumerate(VARIANTS)}


def iter_runs(exp_show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run in `dvc exp show --json` output, in its order: {name, rev, data, state}.

    name: the experiment's name, the branch name of a baseline, `workspace`, or the short commit.
    state: None, or why the run has no results (e.g. `queued`, `failed`, an error message).
    """
    runs = []
    for entry in exp_show:
        rev = entry.get("rev") or ""
        name = entry.get("name") or ("workspace" if rev == "workspace" else rev[:7])
        runs.append(_run(name, rev, entry))
        for exp in entry.get("experiments") or []:
            executor = exp.get("executor") or {}
            for sub in exp.get("revs") or []:
                run = _run(sub.get("name") or exp.get("name") or (sub.get("rev") or "")[:7], sub.get("rev") or "", sub)
                if executor.get("state") in ("queued", "running", "failed"):
                    run["state"] = run["state"] or executor["state"]
                runs.append(run)
    return runs


def _run(name: str, rev: str, entry: dict[str, Any]) -> dict[str, Any]:
    error = entry.get("error")
    state = (error.get("msg") or error.get("type") or "error") if isinstance(error, dict) else error
    short = rev if rev == "workspace" else rev[:7]
    return {"name": name, "rev": short, "commit": rev, "data": entry.get("data") or {}, "state": state}


def _params(data: dict[str, Any]) -> dict[str, Any]:
    block = (data.get("params") or {}).get("params.yaml") or {}
    return block.get("data") or {}


def read_detail(run: dict[str, Any], path: str = EVAL_DETAIL, cwd: str | Path = ".") -> dict[str, Any] | None:
    """A run's detail eval.json: the workspace's file, or the file as committed at the run's git revision;
    None when the run has none (not evaluated yet, or a commit older than the file)."""
    if run["commit"] == "workspace":
        text = (Path(cwd) / path).read_text(encoding="utf-8") if (Path(cwd) / path).is_file() else None
    else:
        proc = subprocess.run(["git", "show", f"{run['commit']}:{path}"], cwd=cwd, capture_output=True, text=True)
        text = proc.stdout if proc.returncode == 0 else None
    try:
        metrics = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return metrics if isinstance(metrics, dict) else None


def _run_facts(params: dict[str, Any]) -> tuple[str, str, Any]:
    """(model row name, training method, data fraction) of a run's params; an alias resolves to its row.
    Params this version cannot check (an older commit's) are read as they are."""
    fraction = (params.get("data") or {}).get("fraction")
    try:
        row = model_row(params)
        return row.name, load_section(TrainParams, params).method_for(row), fraction
    except ParamsError:
        model = str(params.get("model", "?"))
        row = (params.get("models") or {}).get(model) or {}
        return model, str((params.get("train") or {}).get("method") or row.get("method") or ""), fraction


def _row(variant: str, model: str, method: str, fraction: Any, block: dict, ev: dict, study: dict | None = None,
         ) -> dict[str, Any]:
    bert = ev.get("bertscore") or {}
    row: dict[str, Any] = {
        "variant": variant, "model": model, "method": method, "fraction": fraction,
        "encoder": f"{bert.get('model', '')}@{bert.get('layer', '')}" if bert else "",
        "n_examples": ev.get("n_examples"), "clusters": (ev.get("bootstrap") or {}).get("clusters"),
    }
    for key in HEADLINE:
        for suffix in ("", "_ci_low", "_ci_high"):
            row[key + suffix] = block.get(key + suffix)
        row[f"study_{key}"] = (study or {}).get(key)  # the study's way: prompt + continuation vs the whole note
    return row


def compare_rows(exp_show: list[dict], read: Callable[[dict[str, Any]], dict | None] | None = None,
                 ) -> tuple[list[dict[str, Any]], list[str]]:
    """The cross-model rows and the skipped runs from parsed `dvc exp show --json` output, each run's detail
    metrics coming from `read(run)` (default: `read_detail`).

    Each row: variant (`pretrained`, `finetuned` or `baseline:<name>`), model, method, fraction,
    encoder (`<bertscore model>@<layer>`), n_examples, clusters (test patients), runs (comma-joined names),
    rev (of the first run), and every headline metric with `_ci_low` / `_ci_high` (None where absent). Rows with equal
    (variant, model, method, fraction, encoder, scores) are merged. Order: pre-trained rows, then
    fine-tuned, then baselines, each in `dvc exp show` order. Skipped: "name (reason)" per run without metrics.
    """
    read = read or read_detail
    merged: dict[tuple, dict[str, Any]] = {}
    skipped = []
    for run in iter_runs(exp_show):
        ev = None if run["state"] else read(run)
        if not ev:
            skipped.append(f"{run['name']} ({run['state'] or f'no {EVAL_DETAIL}'})")
            continue
        params = _params(run["data"])
        model, method, fraction = _run_facts(params)
        study = (ev.get("study_way") or {}).get("systems") or {}
        rows = [_row(name if kind == "model" else f"baseline:{name}", model if kind == "model" else "",
                     method if name == VARIANTS[1] else "", fraction if name == VARIANTS[1] else None, block, ev,
                     study.get(name))
                for name, kind, block in eval_systems(ev)]
        seed = (params.get("train") or {}).get("seed")
        for row in rows:
            row["seeds"] = [seed] if row["variant"] == VARIANTS[1] else []
        for row in rows:
            key = tuple((k, json.dumps(v)) for k, v in row.items())
            if key in merged:
                merged[key]["runs"].append(run["name"])
            else:
                merged[key] = {**row, "runs": [run["name"]], "rev": run["rev"], "_config": _config(params)}
    out = fold_seeds([{**row, "runs": ", ".join(row["runs"])} for row in merged.values()])
    out.sort(key=lambda r: GROUP_ORDER.get(r["variant"], 2))  # stable: keeps dvc exp show order in a group
    return [{k: v for k, v in r.items() if k != "_config"} for r in out], skipped


def _config(params: dict[str, Any]) -> str:
    """A run's params with train.seed left out: runs that differ only in their seed share it."""
    train = {k: v for k, v in (params.get("train") or {}).items() if k != "seed"}
    return json.dumps({**params, "train": train}, sort_keys=True, default=str)


def fold_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fine-tuned rows of runs that differ only in train.seed, folded into one row per configuration: each
    metric the mean over the seeds, `<metric>_sd` its standard deviation (ddof 1), `seeds` the seeds, `runs`
    all the runs; intervals dropped (the spread across seeds is the uncertainty shown). Other rows pass."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["variant"], row["model"], row["method"], row["encoder"], row["_config"]) \
            if row["variant"] == VARIANTS[1] else (id(row),)
        groups.setdefault(key, []).append(row)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        folded = {**group[0], "runs": ", ".join(r["runs"] for r in group), "seeds": sorted(
            s for r in group for s in r["seeds"])}
        for key in HEADLINE:
            values = [r[key] for r in group if r[key] is not None]
            folded[key] = float(np.mean(values)) if values else None
            folded[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
            folded[f"{key}_ci_low"] = folded[f"{key}_ci_high"] = None
        out.append(folded)
    return out


def _with_sd(value: Any, sd: float | None = None) -> str:
    """A mean as `fmt` writes it, with ± its standard deviation across seeds when there is one."""
    return fmt(value) if sd is None else f"{fmt(value)} ± {sd:.4f}"


def to_markdown(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    """The rows as a Markdown table of mean scores, with notes on encoders and skipped runs."""
    header = ["Variant", "Model", "Method", "Fraction", "Runs", *(LABELS[k] for k in HEADLINE)]
    body = []
    for r in rows:
        variant = VARIANT_NAMES.get(r["variant"], r["variant"])
        runs = r["runs"] + (f" (seeds {', '.join(map(str, r['seeds']))})" if len(r.get("seeds") or []) > 1 else "")
        body.append([variant, r["model"] or MISSING, r["method"] or MISSING, fmt(r["fraction"], None), runs,
                      *(_with_sd(r[k], r.get(f"{k}_sd")) for k in HEADLINE)])
    if not rows:
        body.append(["(no run has metrics)"] + [""] * (len(header) - 1))
    lines = table(header, body)
    notes = ["", "Mean over the test examples; 95 % intervals are in compare.csv; ± is the standard deviation across "
             "the seeds of runs that differ only in train.seed. "
             "rouge* = literal overlap, Precision/Recall/F1 = BERTScore (semantic similarity)."]
    encoders = sorted({r["encoder"] for r in rows if r["encoder"]})
    if len(encoders) > 1:
        notes.append(f"WARNING: runs use different BERTScore encoders ({', '.join(encoders)}); "
                     "their BERTScore columns are not comparable.")
    if skipped:
        notes.append(f"Skipped (no metrics): {', '.join(skipped)}.")
    return "\n".join(lines + notes) + "\n"


CSV_COLUMNS = ["variant", "model", "method", "fraction", "runs", "seeds", "rev", "encoder", "n_examples", "clusters",
               *(k + s for k in HEADLINE for s in ("", "_ci_low", "_ci_high", "_sd"))]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text with CSV_COLUMNS (empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    cell = lambda v: "" if v is None else " ".join(map(str, v)) if isinstance(v, list) else v  # noqa: E731
    writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


RADAR_STYLE = plotting.RadarStyle(size=(9, 7), clockwise_from_top=True, marker="o", markersize=3, fill=None,
                                tick_fontsize=None, title_fontsize=None, legend_loc="upper left",
                                legend_anchor=(1.08, 1.0), legend_fontsize=8)


def radar_chart(rows: list[dict[str, Any]], path: str | Path | IO[bytes], dpi: int = 100) -> None:
    """A radar (polar) chart of the model rows (baselines left out) over the headline metrics, radius 0–1."""
    models = [r for r in rows if not r["variant"].startswith("baseline:")]
    if warning := plotting.fonts_for(f"{r['model']} {r['runs']}" for r in models):
        print(f"notelm compare: {warning}", file=sys.stderr)
    lines = []
    for r in models:
        values = np.array([r[k] if r[k] is not None else np.nan for k in HEADLINE] + [r[HEADLINE[0]] or np.nan])
        label = f"{r['model']} {VARIANT_NAMES.get(r['variant'], r['variant']).lower()} ({r['runs'].split(', ')[0]})"
        sd = None
        if r.get(f"{HEADLINE[0]}_sd") is not None:  # seeds folded: a band of ± one standard deviation
            sd = np.array([r.get(f"{k}_sd") or 0.0 for k in HEADLINE] + [r.get(f"{HEADLINE[0]}_sd") or 0.0])
        lines.append(plotting.RadarLine(label, values, "--" if r["variant"] == VARIANTS[0] else "-", sd))
    fig = plotting.radar(lines, [LABELS[k] for k in HEADLINE], "NoteLM: models compared (mean scores)", 1.0, RADAR_STYLE)
    fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})


def per_example_at(run: dict[str, Any], path: str = PER_EXAMPLE) -> list[dict[str, str]]:
    """The per-example scores of a run: the workspace's file, or the DVC-cached file of the run's commit."""
    if run["commit"] == "workspace":
        text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else None
    else:
        import dvc.api

        try:
            text = dvc.api.read(path, rev=run["commit"])
        except Exception as exc:  # noqa: BLE001 - a missing commit, file or cache entry: said in one message
            raise NoteLMError(f"{path} of {run['name']} ({run['rev']}) cannot be read: {exc}; `dvc pull` it or "
                              "re-run the experiment") from exc
    if text is None:
        raise NoteLMError(f"{path} of {run['name']} not found: run `dvc repro` first")
    return list(csv.DictReader(io.StringIO(text)))


def paired_runs(exp_show_: list[dict[str, Any]], first: str, second: str, variant: str = VARIANTS[1],
                samples: int = 10000, seed: int = 0) -> str:
    """The paired, patient-clustered difference second − first of one variant between two runs scored on the
    same test notes (e.g. a clean and a leaky experiment), as Markdown; NoteLMError unless like for like."""
    from notelm.evaluation.bootstrap import Resampling, interval, replicates, verdict

    runs = {r["name"]: r for r in iter_runs(exp_show_)} | {r["rev"]: r for r in iter_runs(exp_show_)}
    missing = [name for name in (first, second) if name not in runs]
    if missing:
        raise NoteLMError(f"no run named {', '.join(missing)} in `dvc exp show`; known: {', '.join(sorted(runs))}")
    scores = []
    for name in (first, second):
        rows = {r["note_id"]: r for r in per_example_at(runs[name]) if r["variant"] == variant}
        if not rows:
            raise NoteLMError(f"{name}: no per-example scores of `{variant}`")
        scores.append(rows)
    if set(scores[0]) != set(scores[1]):
        raise NoteLMError(f"{first} and {second} scored different test notes ({len(set(scores[0]) ^ set(scores[1]))} "
                          "differ): their scores cannot be paired; keep test.jsonl the same (data.leak_test_patients does)")
    notes = sorted(scores[0])
    clusters = Resampling.by([scores[0][n]["subject_id"] for n in notes])
    rows = []
    for key, (nums, den) in _paired_columns(scores[0][notes[0]], scores[1][notes[0]]).items():
        a, b = (np.array([sum(float(s[n][c]) for c in nums) for n in notes]) for s in scores)
        wa, wb = (np.array([float(s[n][den]) if den else 1.0 for n in notes]) for s in scores)
        if wa.sum() == 0 or wb.sum() == 0:  # a rate of no facts at all is undefined
            continue
        reps = replicates(np.stack([a, b], 1), clusters, samples, seed, np.stack([wa, wb], 1))
        mean_a, mean_b = a.sum() / wa.sum(), b.sum() / wb.sum()
        d = float(mean_b - mean_a)
        low, high = interval(d, reps[:, 1] - reps[:, 0])
        rows.append([LABELS[key], fmt(mean_a), fmt(mean_b), f"{d:+.4f} [{low:+.4f}, {high:+.4f}]",
                     verdict(low, high, direction(key))])
    head = (f"`{variant}` of {second} − {first}, paired over the same {len(notes)} test notes, resampling their "
            f"{clusters.n_clusters} patients ({samples} resamples):")
    header = ["metric", first, second, f"{second} − {first} [95 % CI]", "verdict"]
    return "\n".join([head, "", *table(header, rows, "lrrr")]) + "\n"


def _paired_columns(first: dict, second: dict) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """{metric: (per-example columns summed into its numerator, its denominator column or None)} of the metrics
    both runs' per-example files hold: the scores, bits per byte, facts per note and the fact rates."""
    def has(col: str) -> bool:
        return first.get(col) not in (None, "") and second.get(col) not in (None, "")

    out: dict[str, tuple[tuple[str, ...], str | None]] = {k: ((k,), None) for k in HEADLINE if has(k)}
    if has("nll_bits"):
        out["bits_per_byte"] = (("nll_bits",), "bytes")
    if has(FACTS):  # a fact class one run's version did not sort into is left out, not read as zero
        out.update({k: ((k,), None) for k in FACT_PER_NOTE if has(k)})
        for rate, classes in FACT_RATES.items():
            if all(has(f"facts_{c}") for c in classes):
                out[rate] = (tuple(f"facts_{c}" for c in classes), FACTS)
    return out


def exp_show(all_branches: bool = False, all_commits: bool = False, cwd: str | Path = ".") -> list[dict[str, Any]]:
    """Run `dvc exp show --json` (with -a / -A) in `cwd` and return its parsed output; NoteLMError on failure."""
    cmd = ["dvc", "exp", "show", "--json"] + (["--all-branches"] if all_branches else []) \
        + (["--all-commits"] if all_commits else [])
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise NoteLMError("`dvc` not found on PATH; activate the project's environment (. .venv/bin/activate)") from exc
    if proc.returncode != 0:
        raise NoteLMError(f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-1000:]}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise NoteLMError(f"`{' '.join(cmd)}` did not print JSON ({exc})") from exc
    if not isinstance(data, list):
        raise NoteLMError(f"`{' '.join(cmd)}`: expected a JSON list of runs")
    return data


def compare(out_dir: str | Path = "compare", all_branches: bool = False, all_commits: bool = False,
            exp_json: str | Path | None = None, study: bool = False, ratings: str | Path | None = None,
            resample: str = "prompt") -> str:
    """Build the comparison (from `exp_json`, a saved `dvc exp show --json`, or by running it), write
    compare.md, compare.csv and radar.png into `out_dir` (and with `study`, study.md: the study's tables beside
    ours; with `ratings`, the arena's leaderboard from that file, its bootstrap resampling `resample`), and
    return the Markdown.
    """
    if exp_json is not None:
        path = Path(exp_json)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NoteLMError(f"{path}: cannot read `dvc exp show --json` output ({exc})") from exc
        if not isinstance(data, list):
            raise NoteLMError(f"{path}: expected the JSON list that `dvc exp show --json` prints")
    else:
        data = exp_show(all_branches, all_commits)
    if not data:
        raise NoteLMError("`dvc exp show` listed no runs: commit the pipeline (git commit) after a first `dvc repro`")
    rows, skipped = compare_rows(data)
    markdown = to_markdown(rows, skipped)
    if ratings is not None:
        markdown += "\n## Arena leaderboard\n\n" + leaderboard_markdown(Path(ratings), resample)
    out = Path(out_dir)
    with atomic_open(out / "compare.md") as fh:
        fh.write("# NoteLM: models compared\n\n" + markdown)
    with atomic_open(out / "compare.csv") as fh:
        fh.write(to_csv(rows))
    with atomic_open(out / "radar.png", "wb") as fh:
        radar_chart(rows, fh)
    if study:
        from notelm.study import study_tables

        tables = study_tables(rows)
        with atomic_open(out / "study.md") as fh:
            fh.write("# The study's tables beside NoteLM's\n\n" + tables)
        markdown += "\n## The study's tables\n\n" + tables
    return markdown
