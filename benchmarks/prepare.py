"""Benchmark `prepare` (and the leakage audit) on a MIMIC-III-scale NOTEEVENTS.

Synthesises a NOTEEVENTS.csv.gz in a temporary directory (by default 2,100,000 rows,
about 3.6 GB of CSV, like the real 2.08 M rows / ~4 GB; never committed, deleted
afterwards unless --keep), then runs each stage in its own Python process with the
temporary directory as working directory and the repository's params.yaml, and
writes wall time, rows/s and peak RSS per stage to benchmarks/results/prepare.json.

    python benchmarks/prepare.py                 # full scale (target: ≤ 15 min, ≤ 3 GB RSS on 2 cores)
    python benchmarks/prepare.py --rows 100000   # quick look; the table extrapolates to 2.08 M rows

The corpus mixes MIMIC-III's categories in roughly their real shares (about half
nursing), multi-line notes with quoted phrases and `[**...**]` placeholders, a few
ISERROR=1 and blank rows, and one malformed row (bad id, bad date, undecodable
bytes, extra field) in every 50,000, so the reject paths are exercised too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIMIC_ROWS = 2_083_180
HEADER = b'"ROW_ID","SUBJECT_ID","HADM_ID","CHARTDATE","CHARTTIME","STORETIME","CATEGORY","DESCRIPTION","CGID","ISERROR","TEXT"\n'
# (category, description, share of rows) roughly as in MIMIC-III NOTEEVENTS
CATEGORIES = [
    ("Nursing/other", "Report", 0.395),
    ("Radiology", "CHEST (PORTABLE AP)", 0.25),
    ("Nursing", "Nursing Progress Note", 0.107),
    ("ECG", "Report", 0.10),
    ("Physician ", "Physician Resident Progress Note", 0.068),
    ("Discharge summary", "Report", 0.028),
    ("Echo", "Report", 0.022),
    ("Respiratory ", "Respiratory Care Shift Note", 0.015),
    ("Nutrition", "Nutrition Note", 0.015),
]
SYSTEMS = {
    "Neuro": ["A&Ox{a}, follows commands, MAE, PERRL {p}mm brisk.", "Sedated on propofol {d}mcg/kg/min, RASS -{a}, withdraws to pain.",
              "Alert, oriented x{a}, speech clear, moving all extremities, no focal deficits noted."],
    "CV": ["HR {hr} NSR, no ectopy, SBP {sbp}/{dbp}, MAP {map}.", "ST {hr}-{hr2} with occasional PVCs, BP {sbp}/{dbp}, K+ {k}.{k2} repleted.",
           'Afib rate {hr}, on diltiazem gtt {d}mg/hr, pulses palpable x4, "warm and well perfused".'],
    "Resp": ["LS clear bilat, RR {rr}, SpO2 {sat}% on {o2}L NC.", "Intubated, AC {vt}/{rr}/PEEP {peep}/FiO2 {fio2}%, suctioned for thick tan secretions.",
             "Coarse crackles at bases, nonproductive cough, sats {sat}% on {fio2}% face tent."],
    "GI/GU": ["Abd soft, NT/ND, +BS, tolerating TF at {tf}cc/hr via OGT.", "Foley draining clear yellow urine {uo}cc/hr, BUN/Cr {bun}/{cr}.{k2}.",
              "NPO, abd distended, hypoactive BS, no BM this shift, lactulose given."],
    "Skin": ["Intact, no breakdown, turned q2h.", "Stage {a} sacral ulcer, duoderm intact, heels offloaded.", "Incision C/D/I, staples intact, no drainage."],
    "Pain": ["Denies pain.", "Reports {a}/10 pain, morphine {a}mg IV given with relief.", "Fentanyl {d}mcg/hr, appears comfortable, no grimacing."],
    "Social": ["Wife [**Name (NI) {n}**] at bedside, updated by team.", "Family called, updated on plan of care.", "Pt is full code, HCP is daughter."],
    "Plan": ["Continue to monitor, wean vent as tolerated, f/u AM labs.", "Trend lactate, follow cultures, titrate pressors to MAP > 65.",
             "Possible transfer to floor, PT consult, advance diet as tolerated."],
}


def _note(rng: random.Random, i: int) -> str:
    """One multi-line nursing-style note, 1-2.5 KB, unique to row `i`."""
    v = {
        "a": rng.randint(1, 4), "p": rng.randint(2, 5), "d": rng.randint(5, 80), "hr": rng.randint(55, 130), "hr2": rng.randint(70, 140),
        "sbp": rng.randint(85, 170), "dbp": rng.randint(40, 95), "map": rng.randint(55, 110), "k": rng.randint(3, 5), "k2": rng.randint(0, 9),
        "rr": rng.randint(10, 32), "sat": rng.randint(88, 100), "o2": rng.randint(1, 6), "vt": rng.randrange(350, 600, 50), "peep": rng.randint(5, 12),
        "fio2": rng.randrange(30, 100, 10), "tf": rng.randrange(10, 80, 5), "uo": rng.randint(15, 200), "bun": rng.randint(8, 90), "cr": rng.randint(0, 4),
        "n": rng.randint(100, 9999),
    }
    lines = [f"Nursing progress note {i} [**Hospital1 {rng.randint(1, 99)}**] [**2101-{rng.randint(1, 12)}-{rng.randint(1, 28)}**]"]
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        for system, variants in SYSTEMS.items():
            lines.append(f"{system}: {rng.choice(variants).format(**v)} {rng.choice(variants).format(**v)}")
    return "\n".join(lines)


def synthesize(path: Path, rows: int, seed: int = 0, compress: bool = True) -> int:
    """Write a NOTEEVENTS-shaped CSV of `rows` rows to `path`; return the uncompressed size in bytes."""
    rng = random.Random(seed)
    cats = [c for c, _, _ in CATEGORIES]
    weights = [w for _, _, w in CATEGORIES]
    descs = {c: d for c, d, _ in CATEGORIES}
    size = 0
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if compress else (lambda p: open(p, "wb"))
    with opener(path) as fh:
        fh.write(HEADER)
        size += len(HEADER)
        batch = []
        for i in range(1, rows + 1):
            subject = rng.randint(1, 46_000)
            hadm = 100_000 + subject * 4 + rng.randint(0, 2)
            day = rng.randint(1, 28)
            cat = rng.choices(cats, weights)[0]
            text = "" if i % 1009 == 0 else _note(rng, i).replace('"', '""')
            charttime = f"2101-03-{day:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
            iserror = "1" if i % 997 == 0 else ""
            line = f'{i},{subject},{hadm},2101-03-{day:02d},{charttime},{charttime},"{cat}","{descs[cat]}",{rng.randint(14000, 21000)},{iserror},"{text}"\n'.encode()
            bad = i % 50_000
            if bad == 1:
                line = line.replace(f"{i},{subject},".encode(), f"{i},S{subject},".encode(), 1)
            elif bad == 2:
                line = line.replace(b",2101-03-", b",2101-13-", 1)
            elif bad == 3:
                line = line.replace(b"Neuro:", b"Neuro:\xff\xfe", 1)
            elif bad == 4:
                line = line[:-1] + b',"extra"\n'
            batch.append(line)
            if len(batch) == 10_000:
                data = b"".join(batch)
                fh.write(data)
                size += len(data)
                batch = []
        data = b"".join(batch)
        fh.write(data)
        size += len(data)
    return size


def _stage(name: str) -> None:
    """Child process: run one stage in the current directory; print its wall time, peak RSS and summary as JSON."""
    sys.path.insert(0, str(REPO / "src"))
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text()) if (REPO / "params.yaml").exists() else {}
    params["data"] = {**(params.get("data") or {}), "raw_path": "data/raw/NOTEEVENTS.csv.gz"}
    started = time.perf_counter()
    error = None
    summary = None
    if name == "prepare":
        from notelm.stages import prepare as module
    else:
        from notelm.stages import audit as module
    try:
        summary = module.run(params)
    except Exception as exc:  # report, don't hide: a failed audit threshold is still a timed run
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak, "error": error, "summary": summary}, default=str))


def _run_stage(name: str, workdir: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--_stage", name], cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_100_000, help="rows of synthetic NOTEEVENTS (default 2,100,000)")
    parser.add_argument("--workdir", type=Path, help="where to build the corpus and outputs (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    parser.add_argument("--plain", action="store_true", help="write a plain .csv instead of .csv.gz")
    parser.add_argument("--no-audit", action="store_true", help="benchmark prepare only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stage:
        _stage(args._stage)
        return
    # benchmarks/results.py, imported here, not at the top: each stage's process runs this file, its RSS measured
    from results import save

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="notelm-bench-"))
    raw = workdir / "data" / "raw" / "NOTEEVENTS.csv.gz"  # prepare sniffs gzip from the bytes, not the name
    raw.parent.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        size = synthesize(raw, args.rows, args.seed, compress=not args.plain)
        gen_s = time.perf_counter() - t0
        synthesised = (f"synthesised {args.rows:,} rows: {size / 1e9:.3f} GB CSV ({size / args.rows:,.0f} B/row), "
                       f"{raw.stat().st_size / 1e9:.3f} GB on disk, in {gen_s:.0f} s")
        print(f"{synthesised} ({workdir})")

        results = {"prepare": _run_stage("prepare", workdir)}
        if not args.no_audit:
            results["audit"] = _run_stage("audit", workdir)

        scale = MIMIC_ROWS / args.rows
        rows, notes, total = [], [f"S{synthesised[1:]}."], 0.0
        for name, r in results.items():
            if "skipped" in r:
                rows.append([name, f"skipped: {r['skipped']}", "–", "–", "–", "–"])
                continue
            if "wall_s" not in r:
                rows.append([name, f"failed: {r['error']}", "–", "–", "–", "–"])
                continue
            total += r["wall_s"]
            rows.append([name, f"{args.rows:,}", f"{r['wall_s']:.1f}", f"{args.rows / r['wall_s']:,.0f}",
                         f"{r['peak_rss_mib']:,.0f}", f"{r['wall_s'] * scale / 60:.1f}"])
            if r.get("error"):
                notes.append(f"{name} error: {r['error'][:300]}")
        notes.append(f"Total {total:.1f} s for {args.rows:,} rows; linear extrapolation to {MIMIC_ROWS:,} rows: "
                     f"{total * scale / 60:.1f} min (target ≤ 15 min, ≤ 3 GB peak RSS).")
        summary = results["prepare"].get("summary")
        if summary:
            notes.append("prepare: " + json.dumps({k: summary[k] for k in ("rows_read", "notes_kept")}
                                                  | {s: summary[s]["notes"] for s in ("train", "val", "test")}))
            notes.append("dropped: " + json.dumps({k: v for k, v in summary["dropped"].items() if v}))
        save("prepare", ["stage", "rows", "wall s", "rows/s", "peak RSS MiB",
                         f"wall at {MIMIC_ROWS / 1e6:.2f} M rows (linear), min"], rows, notes,
             title="prepare and the audit at MIMIC-III scale")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
