"""Batched generation vs one-prompt-at-a-time `transformers.pipeline("text-generation")`, and each one's share
of this machine's compute limit.

All decode the same test prompts greedily with the same model and limits, in one run: the pipeline (the
original study's way), the batched generator as it was (dynamic KV cache, batch 16), the batched generator
the generate stage runs now (static KV cache, `generate.batch_size`), and the same in bf16
(`generate.dtype: bfloat16`). The table reports tokens/s, the ratio to the pipeline, whether each
continuation is identical to the fp32 batched one, and the share of the compute limit: the work done,
2·N_body FLOPs per prompt token (the prefill; N_body = parameters without the embedding matrix, only the
last position's logits being computed) plus 2·N FLOPs per generated token, over the seconds taken, against
a square GEMM's FLOP/s in the same dtype measured in the same run.

    python benchmarks/generate.py                      # 64 prompts, models/base/<params model>
    python benchmarks/generate.py --prompts 16 --model-dir models/finetuned
    python benchmarks/generate.py --profile            # only: one batch's prefill vs decoding, each against the limit

Needs the outputs of `dvc repro base_model prepare` (or of `make repro`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from limits import (  # benchmarks/, on the path when run as a script
    gemm_flops,
    parameter_count,
)
from transformers import pipeline

from notelm import decoding
from notelm.config.generate import GenerateParams
from notelm.config.loader import load_params
from notelm.decoding import complete
from notelm.files import read_jsonl
from notelm.paths import base_model_dir
from notelm.weights import load_checkpoint


def prefill_and_decode(model, tokenizer, prompts: list[str], cfg: GenerateParams, gemm: float) -> None:
    """Print how one batch of the generate stage splits: the prefill (one forward over the prompts, last
    logits only) and the decoding steps after it, each with its share of the fp32 compute limit."""
    from notelm.decoding import cache_kwargs, prompt_ids

    encoded = sorted((prompt_ids(tokenizer, p, cfg.max_prompt_tokens) for p in prompts[: cfg.batch_size]), key=len)
    width, pad = len(encoded[-1]), tokenizer.pad_token_id or 0
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])  # B × width, left-padded
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
    params = parameter_count(model)
    body = params - model.get_input_embeddings().weight.numel()
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)  # warm-up
        tick = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
        prefill = time.perf_counter() - tick
        tick = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg.max_new_tokens,
                       min_new_tokens=cfg.max_new_tokens, do_sample=False, pad_token_id=pad, **cache_kwargs(model))
        decode = time.perf_counter() - tick - prefill  # generate's own prefill costs what the forward did
    new = len(encoded) * cfg.max_new_tokens
    print(f"one batch of {len(encoded)} prompts × {width} tokens (fp32 GEMM {gemm / 1e9:.0f} GFLOP/s):")
    print(f"  prefill {prefill:.1f} s: {2 * body * mask.sum().item() / prefill / gemm:.0%} of the limit")
    print(f"  decode  {decode:.1f} s for {new} tokens ({cfg.max_new_tokens} steps): "
          f"{2 * params * new / decode / gemm:.0%} of the limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=GenerateParams().batch_size)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--profile", action="store_true", help="only split one batch into prefill and decoding")
    args = parser.parse_args()

    model_dir = args.model_dir or base_model_dir(load_params()["model"])
    rows = []
    for split in ("test", "val", "train"):
        rows += read_jsonl(args.data_dir / f"{split}.jsonl")
    prompts = [r["prompt"] for r in rows[: args.prompts]]
    model, tokenizer = load_checkpoint(model_dir)
    cfg = GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    if args.profile:
        return prefill_and_decode(model, tokenizer, prompts, cfg, gemm_flops(torch.float32))

    tick = time.perf_counter()
    batched = complete(model, tokenizer, prompts, cfg)
    batched_s = time.perf_counter() - tick
    # Every generator counts tokens the same way: the decoded continuation, re-tokenised (no EOS).
    batched_tokens = sum(len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"]) for r in batched)

    static, decoding.cache_kwargs = decoding.cache_kwargs, lambda model: {}  # the dynamic cache, as before
    tick = time.perf_counter()
    before = complete(model, tokenizer, prompts, GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=16))
    before_s = time.perf_counter() - tick
    decoding.cache_kwargs = static
    before_tokens = sum(len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"]) for r in before)

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
    params = parameter_count(model)
    body = params - model.get_input_embeddings().weight.numel()
    prompt_tokens = sum(r["prompt_tokens"] for r in batched)

    def share(new_tokens: int, seconds: float, dtype) -> str:
        work = 2 * body * prompt_tokens + 2 * params * new_tokens
        return f"{work / seconds / gemm[dtype]:.0%}"

    same = sum(b["completion"] == s for b, s in zip(batched, single))
    same_bf16 = sum(b["completion"] == h["completion"] for b, h in zip(batched, bf16))
    same_before = sum(b["completion"] == h["completion"] for b, h in zip(batched, before))
    rate_b, rate_s, rate_h = batched_tokens / batched_s, single_tokens / single_s, bf16_tokens / bf16_s
    rate_0 = before_tokens / before_s
    print(f"model: {model_dir}  prompts: {len(prompts)} ({prompt_tokens} prompt tokens)  max_new_tokens: "
          f"{args.max_new_tokens}  threads: {torch.get_num_threads()}  GEMM: fp32 {gemm[torch.float32] / 1e9:.0f}, "
          f"bf16 {gemm[torch.bfloat16] / 1e9:.0f} GFLOP/s")
    print("| generator | batch | tokens | seconds | tokens/s | × pipeline | identical to fp32 batched | share of limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| pipeline, one prompt at a time (fp32) | 1 | {single_tokens} | {single_s:.1f} | {rate_s:.1f} | 1.00 | "
          f"{same}/{len(prompts)} | {share(single_tokens, single_s, torch.float32)} |")
    print(f"| notelm batched as before (fp32, dynamic cache) | 16 | {before_tokens} | {before_s:.1f} | "
          f"{rate_0:.1f} | {rate_0 / rate_s:.2f} | {same_before}/{len(prompts)} | "
          f"{share(before_tokens, before_s, torch.float32)} |")
    print(f"| notelm batched (fp32, static cache; the generate stage) | {args.batch_size} | {batched_tokens} | "
          f"{batched_s:.1f} | "
          f"{rate_b:.1f} | {rate_b / rate_s:.2f} | – | {share(batched_tokens, batched_s, torch.float32)} |")
    print(f"| notelm batched, bf16 (static cache) | {args.batch_size} | {bf16_tokens} | {bf16_s:.1f} | {rate_h:.1f} | "
          f"{rate_h / rate_s:.2f} | {same_bf16}/{len(prompts)} | {share(bf16_tokens, bf16_s, torch.bfloat16)} |")
    print(f"speed-up: {rate_b / rate_s:.2f}x the pipeline, {rate_b / rate_0:.2f}x the generator before; "
          f"identical continuations: {same}/{len(prompts)}")
    for i, (b, s) in enumerate(zip(batched, single)):
        if b["completion"] != s:
            print(f"  differs at prompt {i}:\n    batched : {b['completion'][:120]!r}\n    pipeline: {s[:120]!r}")


if __name__ == "__main__":
    main()
