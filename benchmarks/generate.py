"""Batched generation vs one-prompt-at-a-time `transformers.pipeline("text-generation")`, and each one's share
of this machine's compute limit.

All decode the same test prompts greedily with the same model and limits, in one run: the pipeline (the
original study's way), the batched generator in fp32 (what the generate stage runs), and the same in bf16
(`generate.dtype: bfloat16`). The table reports tokens/s, the ratio to the pipeline, whether each
continuation is identical to the fp32 batched one, and the share of the compute limit: the work done,
2·N_body FLOPs per prompt token (the prefill; N_body = parameters without the embedding matrix, only the
last position's logits being computed) plus 2·N FLOPs per generated token, over the seconds taken, against
a square GEMM's FLOP/s in the same dtype measured in the same run.

    python benchmarks/generate.py                      # 64 prompts, models/base/<params model>
    python benchmarks/generate.py --prompts 16 --model-dir models/finetuned

Needs the outputs of `dvc repro base_model prepare` (or of `make repro`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import pipeline

from notelm.artifacts import base_model_dir, read_jsonl
from notelm.decoding import complete
from notelm.params import GenerateParams, load_params
from notelm.weights import load_checkpoint


def gemm_flops(dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n × n matrix product in `dtype` on this machine now (best of `repeats`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    args = parser.parse_args()

    model_dir = args.model_dir or base_model_dir(load_params()["model"])
    rows = []
    for split in ("test", "val", "train"):
        rows += read_jsonl(args.data_dir / f"{split}.jsonl")
    prompts = [r["prompt"] for r in rows[: args.prompts]]
    model, tokenizer = load_checkpoint(model_dir)
    cfg = GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    torch.set_num_threads(torch.get_num_threads())

    tick = time.perf_counter()
    batched = complete(model, tokenizer, prompts, cfg)
    batched_s = time.perf_counter() - tick
    # Both sides count tokens the same way: the decoded continuation, re-tokenised (no EOS).
    batched_tokens = sum(len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"]) for r in batched)

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    tick = time.perf_counter()
    single = []
    single_tokens = 0
    for prompt in prompts:
        out = pipe(prompt, max_new_tokens=args.max_new_tokens, do_sample=False, return_full_text=False,
                   pad_token_id=tokenizer.pad_token_id)
        text = out[0]["generated_text"].strip()
        single.append(text)
        single_tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    single_s = time.perf_counter() - tick

    half = model.to(torch.bfloat16)
    tick = time.perf_counter()
    bf16 = complete(half, tokenizer, prompts, cfg)
    bf16_s = time.perf_counter() - tick
    bf16_tokens = sum(len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"]) for r in bf16)
    model.to(torch.float32)

    gemm = {dtype: gemm_flops(dtype) for dtype in (torch.float32, torch.bfloat16)}
    params = sum(p.numel() for p in model.parameters())
    body = params - model.get_input_embeddings().weight.numel()
    prompt_tokens = sum(r["prompt_tokens"] for r in batched)

    def share(new_tokens: int, seconds: float, dtype) -> str:
        work = 2 * body * prompt_tokens + 2 * params * new_tokens
        return f"{work / seconds / gemm[dtype]:.0%}"

    same = sum(b["completion"] == s for b, s in zip(batched, single))
    same_bf16 = sum(b["completion"] == h["completion"] for b, h in zip(batched, bf16))
    rate_b, rate_s, rate_h = batched_tokens / batched_s, single_tokens / single_s, bf16_tokens / bf16_s
    print(f"model: {model_dir}  prompts: {len(prompts)} ({prompt_tokens} prompt tokens)  max_new_tokens: "
          f"{args.max_new_tokens}  threads: {torch.get_num_threads()}  GEMM: fp32 {gemm[torch.float32] / 1e9:.0f}, "
          f"bf16 {gemm[torch.bfloat16] / 1e9:.0f} GFLOP/s")
    print("| generator | batch | tokens | seconds | tokens/s | × pipeline | identical to fp32 batched | share of limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| pipeline, one prompt at a time (fp32) | 1 | {single_tokens} | {single_s:.1f} | {rate_s:.1f} | 1.00 | "
          f"{same}/{len(prompts)} | {share(single_tokens, single_s, torch.float32)} |")
    print(f"| notelm batched (fp32; the generate stage) | {args.batch_size} | {batched_tokens} | {batched_s:.1f} | "
          f"{rate_b:.1f} | {rate_b / rate_s:.2f} | – | {share(batched_tokens, batched_s, torch.float32)} |")
    print(f"| notelm batched, bf16 | {args.batch_size} | {bf16_tokens} | {bf16_s:.1f} | {rate_h:.1f} | "
          f"{rate_h / rate_s:.2f} | {same_bf16}/{len(prompts)} | {share(bf16_tokens, bf16_s, torch.bfloat16)} |")
    print(f"speed-up: {rate_b / rate_s:.2f}x   identical continuations: {same}/{len(prompts)}")
    for i, (b, s) in enumerate(zip(batched, single)):
        if b["completion"] != s:
            print(f"  differs at prompt {i}:\n    batched : {b['completion'][:120]!r}\n    pipeline: {s[:120]!r}")


if __name__ == "__main__":
    main()
