"""The model rows: which weights a `model:` name means, and their sizes. The rows live in configs/models.yaml
(the catalogue), not in params.yaml: only `model` (a row name or alias) and `model_overrides` (fields of the
selected row changed for one experiment) are params, so `dvc exp show` stays readable and editing another
model's row changes nothing downstream. The base_model stage reads the catalogue (a dependency of that stage
only) and writes the resolved row beside the weights (`row_record`), where train and generate read it.

    dvc exp run -S model=qwen3                                   a row name or one of its aliases
    dvc exp run -S model=openelm -S ++model_overrides.trust_remote_code=true
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from notelm.core.errors import ParamsError
from notelm.core.loader import at_least, bad, from_mapping, read_yaml_mapping
from notelm.core.paths import MODEL_CATALOGUE, SOURCE_RECORD

Method = Literal["full", "lora", "qlora"]  # heaviest first
METHODS: tuple[str, ...] = get_args(Method)
Dtype = Literal["float32", "bfloat16", "float16"]
OVERRIDES = "model_overrides"  # the params key of one experiment's changes to the selected row


@dataclass(frozen=True)
class ModelRow:
    """One row of the catalogue. `source` syntax: see src/notelm/training/weights.py."""

    name: str
    """The row's key in the catalogue: what metrics, reports and compare show."""
    source: str
    """A hub id, a local HF directory, gguf:<package>/<file> (a GGUF inside an installed wheel),
    gguf-parts:<pkgs>/<file>#sha256=<hex>, or package:<module>[/<subdir>] (an HF folder inside a package)."""
    aliases: list[str] = field(default_factory=list)
    """Short names `model:` may use (qwen3 for qwen3-0.6b)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit)."""
    method: Method = "full"
    """The default training method; train.method overrides it."""
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Module names LoRA adapts (lora and qlora)."""
    dtype: Dtype = "float32"
    """Dtype the base checkpoint is written in."""
    max_length: int = 2048
    """The model's context: training blocks never exceed it."""
    trust_remote_code: bool = False
    """Run the model repository's own code: only when a row (or model_overrides) asks."""
    remote_code: str | None = None
    """Why this row needs its repository's own code (transformers lacks the architecture); without
    trust_remote_code: true, base_model refuses."""
    requires: dict[str, str] = field(default_factory=dict)
    """{module to import: what to pip install} that the row needs beyond the project's dependencies."""
    tokenizer: str | None = None
    """The tokenizer's source when the model repository ships none."""
    family: str | None = None
    """gpt2, llama, qwen3, opt, gemma3, mpt, gpt_neo, bitnet, ... (informational)."""
    parameters: int | None = None
    """Parameter count, for the memory plan while models/base/<model>/ is not there yet (its config wins)."""
    layers: int | None = None
    """Transformer layers (memory plan)."""
    hidden: int | None = None
    """Hidden size (memory plan)."""
    vocab: int | None = None
    """Vocabulary size (memory plan)."""

    def __post_init__(self) -> None:
        if not self.source:
            raise bad(self.name, "source", "must name a hub id, a local directory, gguf:, gguf-parts: or package:",
                      MODEL_CATALOGUE)
        at_least(self, self.name, 8, "max_length", where=MODEL_CATALOGUE)


def read_catalogue(path: str | Path = MODEL_CATALOGUE) -> dict[str, Any]:
    """The raw rows of a catalogue file (name -> mapping); a clear error when it is missing or malformed."""
    return read_yaml_mapping(path, "model catalogue not found (run from the repository root)")


def model_rows(catalogue: Mapping[str, Any] | str | Path = MODEL_CATALOGUE) -> dict[str, ModelRow]:
    """Every row of the catalogue (a file or its mapping), checked, by name; an alias that is a row name or
    another row's alias is refused."""
    raw = catalogue if isinstance(catalogue, Mapping) else read_catalogue(catalogue)
    where = MODEL_CATALOGUE if isinstance(catalogue, Mapping) else str(catalogue)
    rows = {name: from_mapping(ModelRow, {**(fields or {}), "name": name}, name, where)
            for name, fields in raw.items()}
    owner: dict[str, str] = {}
    for row in rows.values():
        for alias in row.aliases:
            other = owner.get(alias) or (alias if alias in rows else None)
            if other is not None:
                raise ParamsError(f"{MODEL_CATALOGUE}: {row.name}.aliases: {alias!r} already names {other!r}")
            owner[alias] = row.name
    return rows


def find_row(rows: dict[str, ModelRow], name: str) -> ModelRow:
    """The row `name` names, directly or by alias; a clear error listing the choices when none does."""
    for row in rows.values():
        if name == row.name or name in row.aliases:
            return row
    choices = ", ".join(f"{r.name}" + (f" ({', '.join(r.aliases)})" if r.aliases else "") for r in rows.values())
    raise ParamsError(f"params.yaml: model {name!r} has no row in {MODEL_CATALOGUE} and is no row's alias; "
                      f"known models (aliases): {choices or '(none)'}")


def model_row(params: dict[str, Any], name: str | None = None,
              catalogue: Mapping[str, Any] | str | Path = MODEL_CATALOGUE) -> ModelRow:
    """The row `name` (default: params' `model:`) names, with params' `model_overrides` applied when it is the
    params' own model."""
    selected = params.get("model")
    name = name or selected
    if not name:
        raise ParamsError("params.yaml: `model` is not set; set it to a row name (or alias) of " + MODEL_CATALOGUE)
    row = find_row(model_rows(catalogue), name)
    overrides = params.get(OVERRIDES) or {}
    if name != selected or not overrides:
        return row
    if not isinstance(overrides, dict):
        raise ParamsError(f"params.yaml: `{OVERRIDES}` must be a mapping of row fields, got {overrides!r}")
    if "name" in overrides:
        raise ParamsError(f"params.yaml: {OVERRIDES}.name: a row's name cannot be overridden; set `model` instead")
    return from_mapping(ModelRow, {**row_record(row), **overrides}, OVERRIDES)


def row_record(row: ModelRow) -> dict[str, Any]:
    """`row` as a JSON-able mapping (what base_model writes beside the weights)."""
    return dataclasses.asdict(row)


def row_from_record(record: Mapping[str, Any], where: str) -> ModelRow:
    """The row a record written by `row_record` holds; `where` names the file in errors."""
    if not isinstance(record, Mapping):
        raise ParamsError(f"{where}: no model row recorded; re-run the base_model stage (dvc repro base_model)")
    return from_mapping(ModelRow, dict(record), "row", where)


def recorded_row(model_dir: str | Path) -> ModelRow:
    """The row the base_model stage resolved for the checkpoint in `model_dir` (its notelm_source.json)."""
    record = Path(model_dir) / SOURCE_RECORD
    if not record.is_file():
        raise ParamsError(f"{record}: not found; build the base model first (dvc repro base_model)")
    return row_from_record(json.loads(record.read_text(encoding="utf-8")).get("row"), str(record))
