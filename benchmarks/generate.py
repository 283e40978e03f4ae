"""Batched generation vs one-prompt-at-a-time `transformers.pipeline("text-generation")`, and each one's share
of this machine's compute limit.

All decode the same test prompts greedily with the same model and limits, in one run: the pipeline (the
original study's way), the batched generator as it was (dynamic KV cache, batch 16), the batched generator
the generate stage runs now (static KV cache, `generate.batch_size`), the same with its decoding step
compiled (`generate.compile`; its compilation timed apart, on a first pass), the same in bf16 (`generate.dtype:
bfloat16`; only where bf16 GEMM is done in hardware), one prompt at a time with drafts the model verifies (the
suggester's decoding, notelm.generation.suggest.Suggester: the chart's aligned span, the n-gram table and prompt
lookup drafted, `--draft-words` words each; issue 32 asks whether it pays in the generate stage), and ONNX Runtime GenAI, what a user would pick instead:
the checkpoint converted offline by its model builder to fp32 and int4 (conversion timed apart), decoding the
same prompt ids batched and one at a time (`pip install onnxruntime-genai onnx onnx_ir onnxscript`; the rows
are left out without it). The table, written to benchmarks/results/generate.json, reports tokens/s, the ratio
to the pipeline, whether each continuation is identical to the fp32 batched one, and the share of the
compute limit: the work done, 2·N_body FLOPs per prompt token (the prefill; N_body = parameters without the
embedding matrix, only the last position's logits being computed) plus 2·N FLOPs per generated token, over the
seconds taken, against a square GEMM's FLOP/s in the same dtype measured in the same run.

    python benchmarks/generate.py                      # 64 prompts, models/base/<params model>
    python benchmarks/generate.py --prompts 16 --model-dir models/finetuned
    python benchmarks/generate.py --profile            # only: one batch's prefill vs decoding, each against the limit
                                                       # (benchmarks/results/generate.profile.json)
    python benchmarks/generate.py --prompts 32 --max-new-tokens 48 --batch-size 32 --model-dir models/finetuned

Needs the outputs of `dvc repro base_model prepare` (or of `make repro`).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import torch
from limits import (  # benchmarks/, on the path when run as a script
    emulated,
    gemm_flops,
    parameter_count,
)
from results import save
from transformers import pipeline

from notelm.config.generate import GenerateParams
from notelm.core.files import read_jsonl
from notelm.core.loader import load_params
from notelm.core.paths import base_model_dir
from notelm.generation import decoding
from notelm.config.names import note_part
from notelm.evaluation.proposers import NGram, chart_copies, drafters
from notelm.generation.decoding import cache_kwargs, complete, decode, prompt_ids
from notelm.generation.suggest import Suggester, Work
from notelm.training.weights import load_checkpoint


def prefill_and_decode(model, tokenizer, prompts: list[str], cfg: GenerateParams, gemm: float) -> None:
    """Write how one batch of the generate stage splits (benchmarks/results/generate.profile.json): the prefill
    (one forward over the prompts, last logits only) and the decoding steps after it, each with its share of the
    fp32 compute limit."""
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
    new, read = len(encoded) * cfg.max_new_tokens, mask.sum().item()
    save("generate.profile", ["phase", "seconds", "tokens", "share of the fp32 limit"], [
        ["prefill (one forward, last logits only)", f"{prefill:.1f}", read, f"{2 * body * read / prefill / gemm:.0%}"],
        [f"decode ({cfg.max_new_tokens} steps)", f"{decode:.1f}", new, f"{2 * params * new / decode / gemm:.0%}"]],
        [f"One batch of {len(encoded)} prompts × {width} tokens (fp32 GEMM {gemm / 1e9:.0f} GFLOP/s)."],
        {"fp32": gemm}, "Generation: prefill vs decoding")


def drafted(model, tokenizer, prompts: list[str], charts: list[list[str]], ngram: NGram, cfg: GenerateParams,
            words: int) -> tuple[list[str], Work]:
    """Greedy continuations of `prompts`, one at a time, `cfg.max_new_tokens` tokens or EOS, each forward verifying
    a draft (the chart's aligned span, the n-gram chain, prompt lookup: `words` words each); and the summed Work."""
    texts, total = [], Work()
    for prompt, chart in zip(prompts, charts):
        typist = Suggester(model, tokenizer, max_words=10**9, budget=cfg.max_new_tokens,
                           drafters=drafters(chart, ngram, words))  # no word cap: the budget or EOS ends it
        texts.append(typist.propose_text(prompt)[0].strip())
        for key in vars(total):
            setattr(total, key, getattr(total, key) + getattr(typist.work, key))
    return texts, total


def ort_generate(onnx_dir: Path, tokenizer, prompts: list[str], cfg: GenerateParams, batch_size: int) -> list[str]:
    """Greedy continuations by ONNX Runtime GenAI of the prompt ids the generate stage decodes (prompt_ids), in
    length-sorted, left-padded batches of `batch_size`, `cfg.max_new_tokens` new tokens, cut after the first EOS."""
    import numpy as np
    import onnxruntime_genai as og

    model, eos = og.Model(str(onnx_dir)), tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    encoded = [prompt_ids(tokenizer, p, cfg.max_prompt_tokens) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
    texts = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in batch)
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=width + cfg.max_new_tokens, batch_size=len(batch), do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(np.array([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch], np.int32))
        while not generator.is_done():
            generator.generate_next_token()
        for row, i in enumerate(batch):
            new = list(generator.get_sequence(row))[width:]
            texts[i] = decode(tokenizer, new[: new.index(eos) + 1] if eos in new else new)
    return texts


def ort_rows(model_dir: Path, tokenizer, prompts: list[str], cfg: GenerateParams, out: Path,
             notes: list[str]) -> list[tuple]:
    """(name, batch, continuations, seconds) of ONNX Runtime GenAI in fp32 and int4, the model converted under
    `out` by its builder first (offline; each conversion's seconds printed and added to `notes`)."""
    rows = []
    for precision, batches in (("fp32", (cfg.batch_size, 1)), ("int4", (cfg.batch_size,))):
        target = out / precision
        tick = time.perf_counter()
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(model_dir), "-o",
                        str(target), "-p", precision, "-e", "cpu", "-c", str(out / "cache")],
                       check=True, capture_output=True)
        notes.append(f"onnxruntime-genai builder, {precision}: {time.perf_counter() - tick:.1f} s to convert "
                     f"{model_dir}.")
        print(notes[-1])
        for batch in batches:
            tick = time.perf_counter()
            texts = ort_generate(target, tokenizer, prompts, cfg, batch)
            rows.append((f"ONNX Runtime GenAI, {precision}", batch, texts, time.perf_counter() - tick))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=GenerateParams().batch_size)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--draft-words", type=int, default=8, help="words per draft (the drafted row)")
    parser.add_argument("--profile", action="store_true", help="only split one batch into prefill and decoding")
    parser.add_argument("--ort-dir", type=Path, default=Path(".cache/notelm/bench-ort"),
                        help="where ONNX Runtime GenAI's converted models go")
    args = parser.parse_args()

    model_dir = args.model_dir or base_model_dir(load_params()["model"])
    rows, charts = [], []
    for split in ("test", "val", "train"):
        split_rows = read_jsonl(args.data_dir / f"{split}.jsonl")
        rows += split_rows
        charts += [c.source for c in chart_copies(split_rows, split_rows)]  # each row's patient's earlier note
    prompts, charts = [r["prompt"] for r in rows[: args.prompts]], charts[: args.prompts]
    model, tokenizer = load_checkpoint(model_dir)
    cfg = GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    if args.profile:
        return prefill_and_decode(model, tokenizer, prompts, cfg, gemm_flops(torch.float32))

    def tokens(texts: list[str]) -> int:  # every generator counts the same way: the text re-tokenised (no EOS)
        return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    def timed(fn) -> tuple[list[str], float]:
        tick = time.perf_counter()
        texts = fn()
        return texts, time.perf_counter() - tick

    def notelm(c: GenerateParams, m=model) -> list[str]:
        return [r["completion"] for r in complete(m, tokenizer, prompts, c)]

    fp32 = torch.float32
    rows = []  # (name, batch, continuations, seconds, dtype of the limit)
    notes = []  # sentences for the result file, in the order the run learns them
    results, batched_s = timed(lambda: complete(model, tokenizer, prompts, cfg))
    batched = [r["completion"] for r in results]
    static, decoding.cache_kwargs = decoding.cache_kwargs, lambda model, compile=False: {}  # dynamic, as before
    rows.append(("notelm batched as before (fp32, dynamic cache)", 16,
                 *timed(lambda: notelm(GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=16))), fp32))
    decoding.cache_kwargs = static
    rows.append(("notelm batched (fp32, static cache; the generate stage)", args.batch_size, batched, batched_s, fp32))
    compiled = GenerateParams(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, compile=True)
    _, first_s = timed(lambda: notelm(compiled))  # compiles the decoding step (one dynamic-shape graph)
    rows.append(("notelm batched, compiled (fp32, static cache)", args.batch_size, *timed(lambda: notelm(compiled)),
                 fp32))
    notes.append(f"generate.compile: the first pass took {first_s:.1f} s, {first_s - rows[-1][3]:.1f} s more than "
                 "the second (compilation).")
    print(notes[-1])

    ngram = NGram([f"{note_part(r['prompt'])} {r['target']}" for r in read_jsonl(args.data_dir / "train.jsonl")])
    tick = time.perf_counter()
    texts, work = drafted(model, tokenizer, prompts, charts, ngram, cfg, args.draft_words)
    rows.append(("notelm one prompt at a time, drafts verified (fp32)", 1, texts, time.perf_counter() - tick, fp32))
    notes.append(f"Drafts, one prompt at a time: {work.forwards / max(work.written, 1):.2f} forwards per token "
                 f"written, {work.accepted} of {work.drafted} draft tokens kept; "
                 f"{(ratio := tokens(texts) / rows[-1][3] / (tokens(batched) / batched_s)):.2f}x the batched "
                 "stage's tokens/s: " + ("it pays" if ratio > 1 else "it does not pay; the generate stage keeps "
                                         "batched decoding") + ".")
    print(notes[-1])

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)

    def one_at_a_time() -> list[str]:
        return [pipe(p, max_new_tokens=args.max_new_tokens, do_sample=False, return_full_text=False,
                     pad_token_id=tokenizer.pad_token_id)[0]["generated_text"].strip() for p in prompts]

    rows.insert(0, ("pipeline, one prompt at a time (fp32)", 1, *timed(one_at_a_time), fp32))
    if not (skip := emulated(torch.bfloat16)):
        half = model.to(torch.bfloat16)
        rows.append(("notelm batched, bf16 (static cache)", args.batch_size, *timed(lambda: notelm(cfg, half)),
                     torch.bfloat16))
        model.to(fp32)
    if importlib.util.find_spec("onnxruntime_genai"):
        rows += [(*row, fp32) for row in ort_rows(model_dir, tokenizer, prompts, cfg, args.ort_dir, notes)]

    gemm = {fp32: gemm_flops(fp32), **({} if skip else {torch.bfloat16: gemm_flops(torch.bfloat16)})}
    params = parameter_count(model)
    body = params - model.get_input_embeddings().weight.numel()
    prompt_tokens = sum(r["prompt_tokens"] for r in results)
    notes.insert(0, f"Model {model_dir}, {len(prompts)} prompts ({prompt_tokens} prompt tokens), max_new_tokens "
                    f"{args.max_new_tokens}, threads {torch.get_num_threads()}; GEMM fp32 {gemm[fp32] / 1e9:.0f} "
                    "GFLOP/s, " + (f"bf16 not run: {skip}." if skip else
                                   f"bf16 {gemm[torch.bfloat16] / 1e9:.0f} GFLOP/s."))
    base_rate = tokens(rows[0][2]) / rows[0][3]
    table = []
    for name, batch, texts, seconds, dtype in rows:
        n = tokens(texts)
        work = 2 * body * prompt_tokens + 2 * params * n  # the prefill's last-position logits only, then 2·N a token
        same = sum(a == b for a, b in zip(texts, batched))
        table.append([name, batch, n, f"{seconds:.1f}", f"{n / seconds:.1f}", f"{n / seconds / base_rate:.2f}",
                      f"{same}/{len(prompts)}", f"{work / seconds / gemm[dtype]:.0%}"])
    rate = tokens(batched) / batched_s
    share = (2 * body * prompt_tokens + 2 * params * tokens(batched)) / batched_s / gemm[fp32]  # the stage's row
    notes.append(f"Speed-up: {rate / base_rate:.2f}x the pipeline; target: the generate stage >= 70 % of the fp32 "
                 f"limit: {'met' if share >= 0.70 else 'not met'} ({share:.0%}).")
    differ = [i for i, (b, s) in enumerate(zip(batched, rows[0][2])) if b != s]
    notes.append(f"The batched continuations differ from the pipeline's at {len(differ)} of {len(prompts)} prompts"
                 + (f" ({', '.join(map(str, differ))}; printed, not saved: they quote the notes)." if differ else "."))
    for i in differ:
        print(f"  differs at prompt {i}:\n    batched : {batched[i][:120]!r}\n    pipeline: {rows[0][2][i][:120]!r}")
    save("generate", ["generator", "batch", "tokens", "seconds", "tokens/s", "× pipeline", "identical to fp32 batched",
                      "share of limit"], table, notes,
         {"fp32": gemm[fp32], **({} if skip else {"bf16": gemm[torch.bfloat16]})}, "Generation throughput")


if __name__ == "__main__":
    main()
