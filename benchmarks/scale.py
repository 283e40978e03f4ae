"""Every stage at MIMIC scale: synthetic NOTEEVENTS of 100k, 500k and 2.1M rows through prepare, the audit, the
training blocks and the retrieval baseline, plus generation and scoring on fixed samples; how each grows.

For each size, benchmarks/prepare.py's generator writes a NOTEEVENTS.csv.gz into a temporary directory, and
each step runs in its own process (its peak RSS is its own) with the repository's params.yaml:

    prepare     the stage on the whole file                                  rows = CSV rows
    audit       the stage on what prepare wrote                              rows = CSV rows
    blocks      the train split tokenised and packed (SmolLM2's tokenizer)   rows = train notes
    retrieval   the nearest train prompt for a fixed 2,000 test prompts      rows = test prompts (vs all train)
    generation  a tiny random model completes a fixed 32 prompts             rows = prompts
    scoring     ROUGE + BERTScore of a fixed 500 pairs                       rows = pairs

It writes rows, seconds, rows/s and peak RSS per step and size, then the exponent b of seconds ∝ (CSV rows)^b
from a log-log fit over the sizes (1: linear; the fixed-sample steps should stay flat, except retrieval,
whose cost per test prompt grows with the train prompts it searches), to benchmarks/results/scale.json.

    python benchmarks/scale.py                              # 100k, 500k, 2.1M rows (about 25 min here)
    python benchmarks/scale.py --rows 20000 100000          # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import MIMIC_ROWS, synthesize  # noqa: E402 - the benchmarks' shared generator

STEPS = ("prepare", "audit", "blocks", "retrieval", "generation", "scoring")
RETRIEVAL_PROMPTS, GENERATION_PROMPTS, SCORING_PAIRS = 2_000, 32, 500
TITLES = {"prepare": "prepare", "audit": "audit", "blocks": "training blocks",  # the result table's columns
          "retrieval": f"retrieval, {RETRIEVAL_PROMPTS:,} test prompts vs all train",
          "generation": f"generation, {GENERATION_PROMPTS} prompts (tiny model)",
          "scoring": f"ROUGE + BERTScore, {SCORING_PAIRS} pairs"}


def _params() -> dict:
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = {**params["data"], "raw_path": "data/raw/NOTEEVENTS.csv.gz"}
    return params


def _split(name: str) -> list[dict]:
    with open(f"data/prepared/{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _step(name: str) -> int:
    """Child process, in the work directory: run one step; return how many rows it handled."""
    if name in ("prepare", "audit"):
        from notelm.core.errors import NoteLMError
        from notelm.stages import audit, prepare

        if name == "prepare":
            return prepare.run(_params())["rows_read"]
        try:
            audit.run(_params())
        except NoteLMError as exc:  # a leak above audit.fail_on is still a timed, complete audit
            print(f"audit: {exc}", file=sys.stderr)
        return json.loads(Path("rows.json").read_text())["rows_read"]
    if name == "blocks":
        from transformers import AutoTokenizer

        from notelm.training.blocks import build_dataset

        tokenizer = AutoTokenizer.from_pretrained(REPO / "models/base/smollm2-135m")
        build_dataset(Path("data/prepared/train.jsonl"), tokenizer, 256, True)
        return sum(1 for _ in open("data/prepared/train.jsonl", encoding="utf-8"))
    test = [r for r in _split("test") if r.get("scored", True)]
    if name == "retrieval":
        from notelm.evaluation.retrieval import retrieve_nearest

        retrieve_nearest([r["prompt"] for r in _split("train")], [r["prompt"] for r in test[:RETRIEVAL_PROMPTS]])
        return min(len(test), RETRIEVAL_PROMPTS)
    if name == "generation":
        sys.path.insert(0, str(REPO))  # the repository: tests.tiny
        from notelm.config.generate import GenerateParams
        from notelm.generation.decoding import complete
        from notelm.training.weights import load_checkpoint
        from tests.tiny import make_tiny_model

        model, tokenizer = load_checkpoint(make_tiny_model(Path("tiny-llama"), "llama"))
        complete(model, tokenizer, [r["prompt"] for r in test[:GENERATION_PROMPTS]], GenerateParams(max_new_tokens=32))
        return min(len(test), GENERATION_PROMPTS)
    from notelm.config.evaluate import EvaluateParams
    from notelm.evaluation.bertscore import bertscore_scores
    from notelm.evaluation.rouge import rouge_scores

    pairs = test[:SCORING_PAIRS]
    preds, refs = [r["prompt"][-300:] for r in pairs], [r["target"] for r in pairs]
    rouge_scores(preds, refs)
    bertscore_scores(preds, refs, EvaluateParams())
    return len(pairs)


def run_step(name: str, workdir: Path) -> dict:
    """Run step `name` in its own process; {rows, seconds, peak_mb} or {error}."""
    env = {**os.environ, "HF_DATASETS_CACHE": str(workdir / "datasets-cache"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    tick = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--_step", name], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    seconds = time.perf_counter() - tick
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not out.strip():
        return {"error": f"exit {proc.returncode}: {err.strip()[-600:]}"}
    return {"rows": int(out.strip().splitlines()[-1]), "seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 500_000, 2_100_000])
    parser.add_argument("--_step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._step:
        print(_step(args._step))
        return 0
    # benchmarks/results.py, imported here, not at the top: each step's process runs this file, its RSS measured
    from results import save

    if not (REPO / "models/base/smollm2-135m/config.json").is_file():
        sys.exit("models/base/smollm2-135m not found: run `make repro` (or `dvc repro base_model`) first")
    results: dict[int, dict[str, dict]] = {}
    cells: dict[int, dict[str, str]] = {}  # the result table: CSV rows × steps
    for rows in args.rows:
        workdir = Path(tempfile.mkdtemp(prefix=f"notelm-scale-{rows}-"))
        try:
            raw = workdir / "data/raw/NOTEEVENTS.csv.gz"
            raw.parent.mkdir(parents=True)
            synthesize(raw, rows)
            results[rows], cells[rows] = {}, {}
            for step in STEPS:
                r = results[rows][step] = run_step(step, workdir)
                if step == "prepare" and "error" not in r:  # the audit's rows are prepare's CSV rows
                    (workdir / "rows.json").write_text(json.dumps({"rows_read": r["rows"]}))
                cells[rows][step] = f"failed: {r['error']}" if "error" in r else \
                    f"{r['seconds']:.1f} s, {r['rows']:,} at {r['rows'] / r['seconds']:,.0f}/s, {r['peak_mb']:,.0f} MB"
                print(f"{rows:,} rows, {step}: {cells[rows][step]}", flush=True)  # progress; the table at the end
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    sizes = sorted(results)
    table = [[f"{s:,}", *(cells[s][step] for step in STEPS)] for s in sizes]
    notes = [("A cell: seconds, the items handled (prepare, audit: CSV rows; training blocks: train notes; retrieval: "
              "test prompts; generation: prompts; scoring: pairs) at items/s, and the step's peak RSS.")]
    if len(sizes) > 1:
        fit = {}
        for step in STEPS:
            points = [(s, results[s][step]["seconds"]) for s in sizes if "error" not in results[s][step]]
            if len(points) > 1:
                b = np.polyfit([math.log(s) for s, _ in points], [math.log(t) for _, t in points], 1)[0]
                at = points[-1][1] * (MIMIC_ROWS / points[-1][0]) ** b
                fit[step] = (f"{b:.2f}", f"{at / 60:.1f} min")
        table.append(["b", *(fit[step][0] if step in fit else "–" for step in STEPS)])
        table.append([f"at {MIMIC_ROWS:,} rows (fit)", *(fit[step][1] if step in fit else "–" for step in STEPS)])
        notes.append("b: seconds ∝ (CSV rows)^b, fitted over " + ", ".join(f"{s:,}" for s in sizes) + " rows (1: "
                     f"linear); the last row carries each step's largest measured time to {MIMIC_ROWS:,} rows with it.")
    save("scale", ["CSV rows", *(TITLES[step] for step in STEPS)], table, notes, title="Every stage at MIMIC scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
