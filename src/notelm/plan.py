"""The tables `notelm plan` prints and the README quotes: the memory plan of every catalogue row on this machine
(`table`) or on a card you name (`gpu_table`, with FSDP over several cards for the rows no single card holds).
A consumer of training/plan.py: no stage imports it, so restyling a table re-runs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notelm.config.models import METHODS, model_rows
from notelm.config.train import TrainParams
from notelm.core.errors import NoteLMError
from notelm.core.loader import load_section
from notelm.core.paths import MODEL_CATALOGUE, base_model_dir
from notelm.report import markdown
from notelm.training.plan import (
    GB,
    Shape,
    available_memory,
    estimate,
    model_shape,
    resolve_precision,
)


def table(params: dict[str, Any], catalogue: str | Path = MODEL_CATALOGUE) -> str:
    """The plan of every catalogue row at the configured train.* batch and length, as a Markdown table."""
    cfg = load_section(TrainParams, params)
    bf16 = resolve_precision(cfg.precision) == "bf16"
    available, where = available_memory()
    loss = f"loss in chunks of {cfg.loss_chunk_tokens} tokens" if cfg.loss_chunk_tokens else "loss over the full logits"
    rows = []
    for name, row in model_rows(catalogue).items():
        method = cfg.method_for(row)
        shape = model_shape(row, base_model_dir(name))
        if shape is None:
            rows.append([name, "?", "?", "?", "?", method, "? (no config.json and no size in its row)"])
            continue
        gb = {m: estimate(shape, m, cfg.batch_size, cfg.block_length(row), bf16, cfg.lora_r, len(row.lora_targets),
                          cfg.loss_chunk_tokens)["total"] / GB
              for m in METHODS}
        rows.append([name, f"{shape.parameters / 1e6:,.0f}M", *(markdown.fmt(gb[m], 1) for m in METHODS), method,
                     "yes" if gb[method] * GB <= available else "no"])
    head = (f"Memory plan: batch {cfg.batch_size} × {cfg.max_length} tokens, {'bf16' if bf16 else 'fp32'}, {loss}; "
            f"available {available / GB:.1f} GB {where}.")
    header = ["model", "parameters", *(f"{m} GB" for m in METHODS), "method", "fits"]
    return "\n".join([head, "", *markdown.table(header, rows, "lrrrr")])


# ------------------------------------------------------------------ hardware you don't have
# Memory each card reports to CUDA (MiB): a card sold as "16 GB" may give less (the T4 gives 15 GiB).
GPU_CARDS = {"t4": 15360, "v100": 16384, "v100-32gb": 32768, "a10": 23028, "a10g": 23028, "l4": 23034,
             "rtx3090": 24576, "rtx4090": 24564, "a100-40gb": 40960, "a100": 81920, "a100-80gb": 81920,
             "h100": 81559, "h200": 143771}
FSDP_CONFIG = "configs/accelerate/fsdp.yaml"


def parse_gpu(text: str) -> tuple[str, float]:
    """(label, bytes) of a card: a size such as `24GB` (taken as GiB, as cards are sold) or a name of GPU_CARDS."""
    key = text.strip().lower().replace(" ", "")
    if key in GPU_CARDS:
        return f"{text} ({GPU_CARDS[key] / 1024:.0f} GiB)", GPU_CARDS[key] * 1024**2
    size = key.removesuffix("gib").removesuffix("gb").removesuffix("g")
    try:
        gib = float(size)
    except ValueError:
        raise NoteLMError(f"notelm plan --gpu {text!r}: expected a size such as 24GB or one of "
                          f"{', '.join(GPU_CARDS)}") from None
    if not 0 < gib < float("inf"):
        raise NoteLMError(f"notelm plan --gpu {text!r}: the size must be a positive number of GB")
    return f"{gib:g} GB card", gib * GB


def fitting(shape: Shape, method: str, cfg: TrainParams, length: int, targets: int, available: float,
            shards: int = 1) -> tuple[int, bool, float] | None:
    """(batch, gradient checkpointing, bytes) of the first of train.batch_size, its half, its quarter, ... 1 that
    fits `available` on a GPU, first without then with gradient checkpointing; None when batch 1 does not."""
    for checkpointing in (False, True):
        batch = cfg.batch_size
        while batch >= 1:
            need = estimate(shape, method, batch, length, True, cfg.lora_r, targets, cfg.loss_chunk_tokens,
                            checkpointing, gpu=True, shards=shards)["total"]
            if need <= available:
                return batch, checkpointing, need
            batch //= 2
    return None


def _cell(fit: tuple[int, bool, float] | None, length: int, smallest: float) -> str:
    if fit is None:
        return f"no (batch 1 needs {smallest / GB:.1f} GB)"
    batch, checkpointing, need = fit
    return f"{batch} × {length}{' + ckpt' if checkpointing else ''}, {need / GB:.1f} GB"


def gpu_table(params: dict[str, Any], gpu: str, gpus: int | None = None, catalogue: str | Path = MODEL_CATALOGUE) -> str:
    """The plan of every catalogue row and method on a card you name (`--gpu`), as Markdown: the largest batch
    that fits and with gradient checkpointing or not; for the rows whose full fine-tune no single card holds,
    the plan for `gpus` cards (default: the fewest of 2, 4, 8 that hold it) with FSDP and its launch command."""
    cfg = load_section(TrainParams, params)
    label, available = parse_gpu(gpu)
    loss = f"loss in chunks of {cfg.loss_chunk_tokens} tokens" if cfg.loss_chunk_tokens else "loss over the full logits"
    lines = [f"Memory plan on one {label}: 16-bit mixed precision (bf16; fp16 on a T4), {loss}; each cell: the "
             f"largest batch from train.batch_size={cfg.batch_size} down that fits (+ ckpt: with gradient "
             "checkpointing), and its estimate (src/notelm/training/plan.py).", ""]
    rows, sharded = [], []
    for name, row in model_rows(catalogue).items():
        shape = model_shape(row, base_model_dir(name))
        if shape is None:
            rows.append([name, "?", "?", "?", "?"])
            continue
        length, targets = cfg.block_length(row), len(row.lora_targets)
        cells = []
        for method in METHODS:
            fit = fitting(shape, method, cfg, length, targets, available)
            smallest = estimate(shape, method, 1, length, True, cfg.lora_r, targets, cfg.loss_chunk_tokens, True,
                                gpu=True)["total"]
            cells.append(_cell(fit, length, smallest))
            if method == "full" and fit is None:
                sharded.append((name, row, shape, length, targets))
        rows.append([name, f"{shape.parameters / 1e6:,.0f}M", *cells])
    lines += markdown.table(["model", "parameters", *METHODS], rows, "lr")
    if sharded:
        lines += ["", f"Full fine-tune sharded with FSDP (full shard; `{FSDP_CONFIG}`) over several of them:", ""]
        shard_rows = []
        for name, row, shape, length, targets in sharded:
            for n in ([gpus] if gpus else [2, 4, 8]):
                fit = fitting(shape, "full", cfg, length, targets, available, shards=n)
                if fit or gpus or n == 8:
                    settings = (f"`model: {name}`, `train.method: full`, `train.batch_size: {fit[0]}`"
                                + (", `train.gradient_checkpointing: true`" if fit[1] else "")) if fit else ""
                    command = (f"{settings} in params.yaml, then `accelerate launch --config_file {FSDP_CONFIG} "
                               f"--num_processes {n} -m notelm.stages.train`" if fit else "does not fit")
                    shard_rows.append([name, str(n), _cell(fit, length, 0) if fit else "no", command])
                    break
        lines += markdown.table(["model", "cards", "per card", "launch"], shard_rows, "lr")
        lines += ["", "To run one: set those in params.yaml, `dvc repro base_model`, run the launch command on the "
                  "machine with the cards (the memory check then counts the weights as sharded), then "
                  "`dvc commit train`."]
    return "\n".join(lines)


README_CARDS = (("T4 (16 GB)", "t4", 1), ("24 GB", "24GB", 1), ("80 GB", "80GB", 1), ("4 × 80 GB", "80GB", 4))


def card_summary(params: dict[str, Any], cards: tuple[tuple[str, str, int], ...] = README_CARDS,
                 catalogue: str | Path = MODEL_CATALOGUE) -> str:
    """Per catalogue row (sizes from the row, so the answer does not depend on what is downloaded here) and card
    (label, --gpu, cards): the heaviest method that fits at train.batch_size × block length or below, as
    "method batch × length [+ ckpt]" (FSDP over the cards when there are several), or "–" when none does."""
    cfg = load_section(TrainParams, params)
    rows = []
    for name, row in model_rows(catalogue).items():
        shape = model_shape(row)
        if shape is None:
            continue
        length, targets = cfg.block_length(row), len(row.lora_targets)
        cells = []
        for _, gpu, n in cards:
            available = parse_gpu(gpu)[1]
            found = next(((m, fit) for m in METHODS
                          if (fit := fitting(shape, m, cfg, length, targets, available, shards=n))), None)
            cells.append(markdown.MISSING if found is None else
                         f"{found[0]} {found[1][0]} × {length}{' + ckpt' if found[1][1] else ''}")
        rows.append([name, f"{shape.parameters / 1e9:.2f} B", *cells])
    return "\n".join(markdown.table(["model", "parameters", *(label for label, _, _ in cards)], rows, "lr"))
