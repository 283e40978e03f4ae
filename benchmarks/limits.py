"""The machine's compute limit, shared by the benchmarks that report a share of it (generate.py, train.py)."""

from __future__ import annotations

import time

SLOW = 5e9  # FLOP/s below which a dtype's GEMM is emulated in software (bf16 without AVX-512 BF16 or AMX)


def gemm_flops(dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n × n matrix product in `dtype` on this machine now (best of `repeats`, after a warm-up).
    A 256 × 256 product is timed first: below SLOW its rate is returned as it is (an emulated bf16 GEMM of
    2048 × 2048 takes a minute here, and the rate does not grow with n)."""
    if n > 256 and (small := gemm_flops(dtype, 256, 2)) < SLOW:
        return small
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best


def emulated(dtype) -> str | None:
    """Why `dtype` is not worth measuring on this machine (its GEMM emulated), or None."""
    rate = gemm_flops(dtype, 256, 2)
    name = str(dtype).removeprefix("torch.")
    if rate >= SLOW:
        return None
    return f"{name} GEMM runs at {rate / 1e9:.2f} GFLOP/s here (emulated: no AVX-512 BF16 or AMX)"


def parameter_count(model) -> int:
    """The model's parameters, a 4-bit weight (two values a byte) counted at its original shape
    (bitsandbytes' quant_state)."""
    return sum(p.quant_state.shape.numel() if getattr(p, "quant_state", None) is not None else p.numel()
               for p in model.parameters())
