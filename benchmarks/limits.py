"""The machine's compute limit, shared by the benchmarks that report a share of it (generate.py, train.py)."""

from __future__ import annotations

import time


def gemm_flops(dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n × n matrix product in `dtype` on this machine now (best of `repeats`, after a warm-up)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best


def parameter_count(model) -> int:
    """The model's parameters, a 4-bit weight (two values a byte) counted at its original shape
    (bitsandbytes' quant_state)."""
    return sum(p.quant_state.shape.numel() if getattr(p, "quant_state", None) is not None else p.numel()
               for p in model.parameters())
