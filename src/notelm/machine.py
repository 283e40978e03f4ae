"""Facts about this machine that explain why a number moved: the CPU and the flags that pick a kernel (AVX-512
BF16 decides whether `train.precision: auto` trains in bf16), the cores, and the library versions.

Recorded beside every benchmark result (benchmarks/results/*.json) and printed by `notelm reproduce --check`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # the ones torch's CPU kernels branch on


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(CPU model name, the FLAGS it has) from /proc/cpuinfo; (platform.processor(), []) where there is none."""
    if not path.is_file():
        return platform.processor() or "unknown", []
    model, flags = "unknown", set()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, [f for f in FLAGS if f in flags]


def facts() -> dict[str, Any]:
    """This machine: CPU model and flags, cores, the precision `train.precision: auto` picks here, and versions."""
    import torch
    import transformers

    from notelm.training.plan import resolve_precision

    model, flags = cpu_info()
    return {"cpu": model, "flags": flags, "cores": os.cpu_count(), "gpu": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else None, "precision_auto": resolve_precision("auto"),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def describe(f: dict[str, Any]) -> str:
    """One line: `<cpu>, <cores> cores, flags <...>, torch <v>` (and the GPU where there is one)."""
    gpu = f", GPU {f['gpu']}" if f.get("gpu") else ""
    return (f"{f['cpu']}, {f['cores']} cores, flags {' '.join(f['flags']) or 'none of ' + '/'.join(FLAGS)}{gpu}, "
            f"torch {f['torch']}")
