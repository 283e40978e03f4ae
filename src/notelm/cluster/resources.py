"""What a grid point asks Slurm for, from the memory plan (src/notelm/training/plan.py): `--mem` and, on a
GPU cluster, `--gres=gpu:1`.

On CPU nodes (no `--gpu`), `--mem` is the plan's estimate of the training process, the heaviest of a
point's stages. With `--gpu CARD` every point trains on one card of that kind: `--gres=gpu:1` where the
plan fits it on one card, and host memory for loading the fp32 checkpoint once (4 bytes a parameter plus
the runtime, times the plan's slack); a point no single card holds is not submitted: it is one big run
over several cards with FSDP (docs/cluster.md). A point whose model size is unknown (no config.json under
models/base/ and no sizes in its catalogue row) asks for the cluster's default memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from notelm.cluster.points import Point, apply
from notelm.config.models import model_row
from notelm.config.train import TrainParams
from notelm.core.loader import load_section
from notelm.core.paths import base_model_dir
from notelm.training.plan import GB, RUNTIME, SLACK, estimate, model_shape, resolve_precision


@dataclass(frozen=True)
class Resources:
    """One point's Slurm request; points with equal requests share one array job."""

    mem_gb: int | None
    """`--mem` in GB (None: the cluster's default)."""
    gpus: int = 0
    """`--gres=gpu:N` (0: a CPU job)."""
    why: str = ""
    """How the request was made, for the submission's listing."""

    def sbatch(self) -> list[str]:
        """The sbatch options of this request."""
        return [*([f"--mem={self.mem_gb}G"] if self.mem_gb else []),
                *([f"--gres=gpu:{self.gpus}"] if self.gpus else [])]

    @property
    def key(self) -> tuple[int | None, int]:
        """What makes two requests one array job."""
        return self.mem_gb, self.gpus


class TooBig(Exception):
    """A point no single card of the named kind holds (it needs FSDP over several)."""


def for_point(point: Point, params: dict[str, Any], card: tuple[str, float] | None = None) -> Resources:
    """The request of `point` on CPU nodes (`card` None) or on one card `(label, bytes)`; TooBig when the card
    cannot hold it at the point's batch (train.batch_size, bf16, the point's checkpointing)."""
    merged = apply(params, point.overrides)
    row = model_row(merged)
    cfg = load_section(TrainParams, merged)
    shape = model_shape(row, base_model_dir(str(merged["model"])))
    if shape is None:
        return Resources(None, 1 if card else 0, f"{row.name}: size unknown, the cluster's default memory")
    method, length, targets = cfg.method_for(row), cfg.block_length(row), len(row.lora_targets)
    if card is None:
        bf16 = resolve_precision(cfg.precision) == "bf16"
        need = estimate(shape, method, cfg.batch_size, length, bf16, cfg.lora_r, targets, cfg.loss_chunk_tokens,
                        cfg.checkpointing(method))["total"]
        return Resources(math.ceil(need / GB), 0, f"{row.name} {method}, batch {cfg.batch_size} × {length}: "
                                                  f"{need / GB:.1f} GB on the CPU")
    label, available = card
    need = estimate(shape, method, cfg.batch_size, length, True, cfg.lora_r, targets, cfg.loss_chunk_tokens,
                    cfg.checkpointing(method), gpu=True)["total"]
    if need > available:
        raise TooBig(f"{point.name}: {row.name} {method}, batch {cfg.batch_size} × {length} needs {need / GB:.1f} GB, "
                     f"more than one {label}: lower train.batch_size (`notelm plan --gpu` says what fits) or run "
                     "it over several cards with FSDP (docs/cluster.md, one big run)")
    host = SLACK * (4 * shape.parameters + RUNTIME)
    return Resources(math.ceil(host / GB), 1, f"{row.name} {method}, batch {cfg.batch_size} × {length}: "
                                              f"{need / GB:.1f} GB on one {label}; host {host / GB:.1f} GB")
