"""The memory plan: will a training run fit on this machine, decided before any weight is loaded.

`estimate` adds up the peak memory of one training process (bytes; P = parameters, A = LoRA
adapter parameters, L/H/V = layers/hidden size/vocabulary, B×T = batch × tokens per block):

    weights      full, lora: 4·P (fp32 master weights)
                 qlora:      0.5·(P − E) for the NF4 linear layers (+ ~0.03 B/param of double-quantised
                             scales) and 4·E for the embeddings (E = V·H, ×2 when untied), which stay fp32
    bf16 copy    bf16 runs: autocast keeps a 2·P bf16 copy of the weights it casts (full, lora)
    grads        4 per trainable parameter (P for full, A for lora/qlora)
    Adam         8 per trainable parameter (exp_avg and exp_avg_sq in fp32)
    activations  ≈ 17·H values per token per layer kept for backward (Korthikanti et al. 2022, less the
                 attention matrix, which SDPA does not keep) at 3 bytes (bf16 autocast: half of them stay
                 fp32) or 4 (fp32): 17·H·L·B·T·bytes; with gradient checkpointing (qlora) the layers'
                 inputs plus one layer's activations would be (L + 17)·H·B·T·bytes, but on the CPU the
                 heap keeps ~6·H per token per layer of freed temporaries it cannot reuse (measured), so
                 (6·L + 17)·H·B·T·bytes
    logits       with the model's own loss, ≈ 20 bytes per value of B·T·V: the logits, their fp32 upcast,
                 the log-softmax kept for backward and the gradients of both — the biggest term for small
                 models with large vocabularies; with the chunked loss (src/notelm/training/loss.py), ≈ 10 bytes per
                 value of one chunk, min(train.loss_chunk_tokens, B·T)·V, plus 4·B·T·H for the gradient of
                 the hidden states and 4·V·H for that of the output layer
    runtime      a fixed 1.0 GB: Python, torch, transformers, the tokenised data, allocator slack

A = 2·r·H per LoRA target matrix per layer (r·(in + out), square projections assumed). The sum is
multiplied by 1.1. Calibrated on SmolLM2-135M (batch 8 × 256, 2-core CPU), it errs on the high side
by 3-32 %; benchmarks/train.py prints it beside the measured peak RSS.

The shape (P, L, H, V) comes from the materialised `models/base/<model>/` (config.json and the
safetensors headers) where present, else from the row's `parameters`, `layers`, `hidden`, `vocab`
in configs/models.yaml. Available memory: free GPU memory on CUDA, else the RAM available to this process
(psutil, capped by a cgroup limit), shared by the local processes of an `accelerate launch`.
The train stage imports this module for `check`; the tables `notelm plan` prints are in plan.py.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.models import METHODS, ModelRow
from notelm.config.train import TrainParams
from notelm.core.errors import NoteLMError

GB = 1024**3
RUNTIME = 1.0 * GB
RUNTIME_GPU = 1.0 * GB  # CUDA context, cuBLAS workspace, caching-allocator fragmentation (not calibrated here)
SLACK = 1.1


@dataclass(frozen=True)
class Shape:
    """What the estimate needs to know about a model."""

    parameters: int
    layers: int
    hidden: int
    vocab: int
    tied: bool = True  # input and output embeddings share one matrix

    @property
    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)


def resolve_precision(precision: str) -> str:
    """`auto` → bf16 where the GPU or CPU supports it natively, else fp32; anything else as given."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return "bf16"
    return "fp32"


def safetensors_parameters(model_dir: Path) -> int:
    """Number of parameters stored in a directory's *.safetensors files, read from their headers only."""
    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total


# What each architecture calls its depth and width in config.json (gpt2, mpt, gpt_neo, OpenELM, open_lm, ...).
LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "num_transformer_layers")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "model_dim", "dim")


def _first(config: dict[str, Any], keys: tuple[str, ...], path: Path) -> int:
    for key in keys:
        if isinstance(config.get(key), int):
            return config[key]
    raise NoteLMError(f"{path}: none of {', '.join(keys)} is set; cannot size this model for the memory plan")


def model_shape(row: ModelRow, model_dir: Path | None = None) -> Shape | None:
    """The shape of `row`: from `model_dir`'s config.json + weights when present, else the row; None if unknown."""
    config_path = model_dir / "config.json" if model_dir is not None else None
    if config_path is not None and config_path.is_file():
        config = json.loads(config_path.read_text())
        text = config.get("text_config") or config  # multimodal configs nest the language model's
        parameters = safetensors_parameters(model_dir) or row.parameters
        if parameters:
            return Shape(
                parameters=parameters,
                layers=_first(text, LAYER_KEYS, config_path),
                hidden=_first(text, HIDDEN_KEYS, config_path),
                vocab=text.get("vocab_size") or config["vocab_size"],
                tied=config.get("tie_word_embeddings", text.get("tie_word_embeddings", True)),
            )
    if row.parameters and row.layers and row.hidden and row.vocab:
        return Shape(row.parameters, row.layers, row.hidden, row.vocab)
    return None


def estimate(shape: Shape, method: str, batch: int, length: int, bf16: bool, lora_r: int = 16,
             lora_targets: int = 2, loss_chunk_tokens: int | None = None, checkpointing: bool | None = None,
             gpu: bool = False, shards: int = 1) -> dict[str, float]:
    """Peak bytes of one training process, by part (see the module docstring); 'total' is the sum × slack.

    `loss_chunk_tokens` None: the model's own loss over the full logits; else the chunked loss.
    `checkpointing` None: gradient checkpointing for qlora only. `gpu`: a CUDA process (activations all in
    bf16 under autocast, no CPU heap term, RUNTIME_GPU). `shards` > 1: FSDP full sharding over that many
    processes (weights, grads and Adam divided among them, plus one layer gathered whole at a time).
    """
    p, e, h, layers = shape.parameters, shape.embedding_parameters, shape.hidden, shape.layers
    tokens = batch * length
    checkpointing = TrainParams().checkpointing(method) if checkpointing is None else checkpointing
    act_bytes = (2 if gpu else 3) if bf16 else 4  # CPU autocast keeps the residual stream and norms in fp32
    adapters = 2 * lora_r * h * lora_targets * layers
    trainable = p if method == "full" else adapters
    if method == "qlora":
        weights = 0.53 * max(p - e, 0) + 4 * e + 4 * adapters
    else:
        weights = 4 * p + (4 * adapters if method == "lora" else 0) + (2 * p if bf16 else 0)
    if checkpointing:  # the layers' inputs + one layer's activations (+ the CPU heap term, see the docstring)
        activations = ((1 if gpu else 6) * layers + 17) * h * tokens * act_bytes
    else:
        activations = 17 * h * layers * tokens * act_bytes
    parts = {
        "weights": weights / shards + (8 * p / layers if shards > 1 else 0),  # FSDP: + one layer unsharded
        "grads": 4 * trainable / shards,
        "adam": 8 * trainable / shards,
        "activations": activations,
        "logits": (20 * tokens * shape.vocab if not loss_chunk_tokens
                   else 10 * min(loss_chunk_tokens, tokens) * shape.vocab + 4 * tokens * h + 4 * shape.vocab * h),
        "runtime": RUNTIME_GPU if gpu else RUNTIME,
    }
    parts["total"] = SLACK * sum(parts.values())
    return parts


def _cgroup_limit() -> float | None:
    """This process's cgroup memory limit minus its usage (v2 or v1), or None when unlimited."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return float(int(limit) - usage)
    return None


def available_memory() -> tuple[float, str]:
    """(bytes one training process may use, where): free GPU memory on CUDA, else available RAM.

    On the CPU the RAM is shared by the local processes of an `accelerate launch` (LOCAL_WORLD_SIZE).
    """
    import psutil
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return float(free), f"GPU {torch.cuda.get_device_name()}"
    ram = float(psutil.virtual_memory().available)
    cgroup = _cgroup_limit()
    if cgroup is not None:
        ram = min(ram, cgroup)
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return ram / processes, "RAM" + (f" / {processes} processes" if processes > 1 else "")


def suggestions(shape: Shape, method: str, batch: int, grad_accum: int, length: int, bf16: bool, lora_r: int,
                lora_targets: int, available: float, loss_chunk_tokens: int | None = None,
                gpu: bool = False, shards: int = 1) -> list[str]:
    """`-S` overrides that would fit in `available` bytes: a lighter method, else a smaller batch
    (with grad_accum raised to keep the effective batch)."""
    def fits(m: str, b: int) -> float | None:
        total = estimate(shape, m, b, length, bf16, lora_r, lora_targets, loss_chunk_tokens, gpu=gpu,
                         shards=shards)["total"]
        return total if total <= available else None

    found = []
    for lighter in METHODS[METHODS.index(method) + 1 :]:
        if (total := fits(lighter, batch)) is not None:
            found.append(f"`-S train.method={lighter}` (~{total / GB:.1f} GB)")
    for m in METHODS[METHODS.index(method) :]:
        b = batch // 2
        while b >= 1:
            if (total := fits(m, b)) is not None:
                method_arg = f"-S train.method={m} " if m != method else ""
                found.append(f"`{method_arg}-S train.batch_size={b} -S train.grad_accum={grad_accum * batch // b}`"
                             f" (~{total / GB:.1f} GB)")
                break
            b //= 2
        if found:
            break
    return found


def fsdp_shards() -> int:
    """How many processes share the weights: the world size under an FSDP `accelerate launch`, else 1."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        return int(os.environ.get("WORLD_SIZE", "1"))
    return 1


def check(row: ModelRow, model_dir: Path, cfg: TrainParams, bf16: bool) -> dict[str, Any] | None:
    """Raise NoteLMError naming what would fit when a training run of `row` would not; return the plan
    (None: the model's shape is unknown)."""
    shape = model_shape(row, model_dir)
    if shape is None:
        return None
    import torch

    method, batch, length, targets = cfg.method_for(row), cfg.batch_size, cfg.block_length(row), len(row.lora_targets)
    gpu, shards = torch.cuda.is_available(), fsdp_shards()
    need = estimate(shape, method, batch, length, bf16, cfg.lora_r, targets, cfg.loss_chunk_tokens,
                    cfg.checkpointing(method), gpu=gpu, shards=shards)["total"]
    available, where = available_memory()
    plan = {"estimate_gb": round(need / GB, 2), "available_gb": round(available / GB, 2), "where": where}
    if need > available:
        fixes = suggestions(shape, method, batch, cfg.grad_accum, length, bf16, cfg.lora_r, targets, available,
                            cfg.loss_chunk_tokens, gpu, shards)
        raise NoteLMError(
            f"train: {row.name} with method={method}, batch {batch} × {length} tokens"
            f"{' in bf16' if bf16 else ''} needs ~{need / GB:.1f} GB, but only {available / GB:.1f} GB {where} "
            f"is available (estimate from src/notelm/training/plan.py).\n"
            + (f"  What would fit: {'; or '.join(fixes)}.\n" if fixes else
               "  Nothing fits at batch 1: pick a smaller model row or a machine with more memory.\n")
            + "  To try anyway: -S train.check_memory=false"
        )
    return plan
