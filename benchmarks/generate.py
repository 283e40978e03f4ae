"""Batched generation vs one-prompt-at-a-time `transformers.pipeline("text-generation")`.

Both decode the same test prompts greedily with the same model and limits, in one run; the
table reports tokens/s for each and their ratio, and whether every continuation is identical.

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

    same = sum(b["completion"] == s for b, s in zip(batched, single))
    rate_b, rate_s = batched_tokens / batched_s, single_tokens / single_s
    print(f"model: {model_dir}  prompts: {len(prompts)}  max_new_tokens: {args.max_new_tokens}  "
          f"threads: {torch.get_num_threads()}")
    print("| generator | batch | tokens | seconds | tokens/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| pipeline, one prompt at a time | 1 | {single_tokens} | {single_s:.1f} | {rate_s:.1f} |")
    print(f"| notelm batched (left pad, KV cache) | {args.batch_size} | {batched_tokens} | {batched_s:.1f} | {rate_b:.1f} |")
    print(f"speed-up: {rate_b / rate_s:.2f}x   identical continuations: {same}/{len(prompts)}")
    for i, (b, s) in enumerate(zip(batched, single)):
        if b["completion"] != s:
            print(f"  differs at prompt {i}:\n    batched : {b['completion'][:120]!r}\n    pipeline: {s[:120]!r}")


if __name__ == "__main__":
    main()
