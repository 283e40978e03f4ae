"""Training speed and memory: fp32 padded (the original study's way) vs packed, fp32 vs bf16, full vs LoRA vs QLoRA,
eager vs compiled (`train.compile`), fused vs foreach AdamW, threads pinned or not.

Each configuration runs in its own subprocess, so its peak RSS is its own: it loads the base
model for its method, tokenises the training split and runs `--steps` optimizer steps of the
HF Trainer (no evaluation, no checkpoints). Tokens/s counts useful tokens only — those under the
attention mask, not padding — over the steps after the first (warm-up); the peak RSS covers the
whole process, loading included. The memory plan's estimate (src/notelm/training/plan.py) is recorded beside it,
and the share of the compute limit: 6·N FLOPs per token for a full fine-tune (4·N for LoRA/QLoRA, whose frozen
weights get no gradient) against a square GEMM's FLOP/s in the run's dtype, measured in the same process.
The first step (warm-up; with the compiler, its compilation too) is reported apart. bf16 rows run only where
bf16 GEMM is done in hardware (limits.emulated says why not). Targets (issue 24): full and LoRA >= 60 % of the
limit, QLoRA >= 40 %, bf16 + packing >= 3x fp32 padded. The table and the ratios between its rows go to
benchmarks/results/train.json; with --profile, where a step goes to benchmarks/results/train.profile.json.

    python benchmarks/train.py                 # SmolLM2-135M, the default data, 4 steps per configuration
    python benchmarks/train.py --profile       # ... and where one step of each goes (matmuls, attention, casts, ...)
    python benchmarks/train.py --only "fp32 packed, full" "fp32 packed, full, compiled"
    python benchmarks/train.py --steps 2 --model-dir models/base/distilgpt2 --lora-targets c_attn

Needs data/prepared (`dvc repro prepare`) and models/base/smollm2-135m (`dvc repro base_model`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from limits import (  # benchmarks/, on the path when run as a script
    emulated,
    gemm_flops,
    parameter_count,
)
from results import save

from notelm.config.train import TrainParams


@dataclass(frozen=True)
class Config:
    """One row: how the train stage would run (method, precision, packing, chunked loss, train.compile), the
    optimizer, and OpenMP's thread placement (environment variables of the row's process)."""

    method: str
    precision: str
    packing: bool = True
    chunked: bool = True  # False: the model's own loss over the full logits
    compile: bool = False
    optim: str = "adamw_torch_fused"  # the train stage's (trainer.training_args)
    env: tuple[tuple[str, str], ...] = ()


PINNED = (("OMP_PROC_BIND", "close"), ("OMP_PLACES", "cores"))
CONFIGS = {
    "fp32 padded, full, own loss": Config("full", "fp32", packing=False, chunked=False),
    "fp32 packed, full": Config("full", "fp32"),
    "fp32 packed, full, foreach AdamW": Config("full", "fp32", optim="adamw_torch"),
    "fp32 packed, full, threads pinned": Config("full", "fp32", env=PINNED),
    "fp32 packed, full, compiled": Config("full", "fp32", compile=True),
    "fp32 packed, lora": Config("lora", "fp32"),
    "fp32 packed, lora, compiled": Config("lora", "fp32", compile=True),
    "fp32 packed, qlora": Config("qlora", "fp32"),
    "bf16 packed, full, own loss": Config("full", "bf16", chunked=False),
    "bf16 packed, full": Config("full", "bf16"),
    "bf16 packed, full, compiled": Config("full", "bf16", compile=True),
    "bf16 packed, lora": Config("lora", "bf16"),
    "bf16 packed, lora, compiled": Config("lora", "bf16", compile=True),
    "bf16 packed, qlora": Config("qlora", "bf16"),
}
BASELINE = "fp32 padded, full, own loss"  # the original study's way
TARGETS = {"full": 0.60, "lora": 0.60, "qlora": 0.40}  # share of the same-run limit of the row's dtype


# torch profiler op names -> where the time of a training step goes
CATEGORIES = (("matmuls", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")),
              ("attention", ("scaled_dot_product", "flash_attention", "efficient_attention")),
              ("casts", ("aten::copy_", "aten::to", "aten::_to_copy")),
              ("loss", ("log_softmax", "nll_loss", "cross_entropy")),
              ("optimizer", ("_foreach", "adam", "Optimizer")),
              ("norms, activations, elementwise", ("aten::mul", "aten::add", "aten::div", "aten::pow", "aten::rsqrt",
                                                   "aten::silu", "aten::gelu", "aten::mean", "aten::fill_", "aten::neg",
                                                   "aten::sub", "aten::cat", "aten::sum")))


def profile_step(trainer, dataset) -> dict[str, float]:
    """Seconds of one more training step by category (self CPU time of the profiled ops; the rest is Python
    and everything the categories do not name)."""
    from torch.profiler import ProfilerActivity, profile

    batch = trainer.data_collator([dataset[i] for i in range(trainer.args.per_device_train_batch_size)])
    tick = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.training_step(trainer.model, batch)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
    total = time.perf_counter() - tick
    spent = dict.fromkeys([c for c, _ in CATEGORIES], 0.0)
    for event in prof.key_averages():
        for category, names in CATEGORIES:
            if any(n.lower() in event.key.lower() for n in names):
                spent[category] += event.self_cpu_time_total / 1e6
                break
    spent["other (Python, data, unnamed ops)"] = max(0.0, total - sum(spent.values()))
    return {"step_s": total, **spent}


def measure(args: argparse.Namespace) -> dict:
    """Run one configuration in this process; return its tokens/s and peak RSS."""
    import torch
    from transformers import TrainerCallback, TrainingArguments

    from notelm.config.models import ModelRow
    from notelm.training.blocks import build_dataset
    from notelm.training.plan import GB, estimate, model_shape
    from notelm.training.trainer import load_for_training, make_trainer

    row = CONFIGS[args.config]
    method, precision, packing = row.method, row.precision, row.packing
    chunk = args.loss_chunk_tokens if row.chunked else None
    spec = ModelRow(name=args.model_dir.name, source=str(args.model_dir), lora_targets=args.lora_targets)
    cfg = TrainParams(method=method, precision=precision, packing=packing, batch_size=args.batch_size,
                      max_length=args.max_length, loss_chunk_tokens=chunk, compile=row.compile)
    model, tokenizer = load_for_training(spec, method, args.model_dir, cfg, precision)
    dataset = build_dataset(args.data_dir / "train.jsonl", tokenizer, args.max_length, packing)

    useful = [0]  # tokens under the attention mask that went through a training forward pass

    def count(module, _args, kwargs):
        if module.training:
            useful[0] += int(kwargs["attention_mask"].sum())

    model.register_forward_pre_hook(count, with_kwargs=True)
    marks: list[tuple[float, int]] = [(time.perf_counter(), 0)]  # the start, then each step's end

    class Meter(TrainerCallback):
        def on_step_end(self, *_, **__):
            marks.append((time.perf_counter(), useful[0]))

    training = TrainingArguments(
        output_dir=str(args.scratch), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=cfg.learning_rate, bf16=precision == "bf16", save_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, logging_steps=10**6, seed=cfg.seed, dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(), optim=row.optim,
    )
    trainer = make_trainer(model, training, chunk, train_dataset=dataset, callbacks=[Meter()])
    trainer.train()
    first_step_s = marks[1][0] - marks[0][0]  # warm-up, and compilation with the compiler on
    (t0, n0), (t1, n1) = marks[1], marks[-1]
    useful_share = useful[0] / ((len(marks) - 1) * args.batch_size * args.max_length)  # before the profiled step
    profile = profile_step(trainer, dataset) if args.profile else None
    params = parameter_count(model)
    # the compute limit: 6·N FLOPs per token for a full fine-tune, 4·N with frozen weights (no weight gradients)
    flops_per_token = (6 if method == "full" else 4) * params
    gemm = gemm_flops(torch.bfloat16 if precision == "bf16" else torch.float32)
    limit = gemm / flops_per_token
    shape = model_shape(spec, args.model_dir)
    planned = estimate(shape, method, args.batch_size, args.max_length, precision == "bf16", cfg.lora_r,
                       len(spec.lora_targets), chunk)["total"] / GB
    return {
        "config": args.config,
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "useful_share": useful_share,
        "step_s": (t1 - t0) / (len(marks) - 2),
        "first_step_s": first_step_s,
        "threads": torch.get_num_threads(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "plan_gb": planned,
        "limit_tokens_per_s": limit,
        "gemm_flops": gemm,
        "profile": profile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration (first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model-dir", type=Path, default=Path("models/base/smollm2-135m"))
    parser.add_argument("--lora-targets", nargs="+", default=["q_proj", "k_proj", "v_proj", "o_proj"])
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--loss-chunk-tokens", type=int, default=TrainParams.loss_chunk_tokens,
                        help="train.loss_chunk_tokens of the chunked rows (default: the params.yaml default)")
    parser.add_argument("--profile", action="store_true", help="also profile one step of each configuration")
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), metavar="CONFIG", help="run only these rows")
    parser.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)  # the child's configuration
    parser.add_argument("--scratch", type=Path, default=Path(".cache/notelm/bench-train"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first step is warm-up)")
    if args.config:
        print("RESULT " + json.dumps(measure(args)), flush=True)
        return
    if not (args.data_dir / "train.jsonl").is_file():
        sys.exit(f"{args.data_dir}/train.jsonl not found: run `dvc repro prepare` (or `make repro`) first")
    if not (args.model_dir / "config.json").is_file():
        sys.exit(f"{args.model_dir} not found: run `dvc repro base_model` with model: smollm2-135m (the default)")

    names = args.only or list(CONFIGS)
    import torch

    skip = emulated(torch.bfloat16)
    notes = [(f"Model {args.model_dir}, batch {args.batch_size} × {args.max_length} tokens, {args.steps} steps each "
              f"(tokens/s over steps 2..{args.steps}, useful tokens only; step 1 apart); chunked loss: "
              f"{args.loss_chunk_tokens} tokens per chunk; {torch.get_num_threads()} threads.")]
    rows, results = [], {}
    for name in names:
        row = CONFIGS[name]
        if row.precision == "bf16" and skip:
            rows.append([name, f"not run: {skip}", *["–"] * 7])
            continue
        cmd = [sys.executable, __file__, "--config", name, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--model-dir", str(args.model_dir), "--data-dir", str(args.data_dir),
               "--loss-chunk-tokens", str(args.loss_chunk_tokens),
               "--lora-targets", *args.lora_targets, *(["--profile"] if args.profile else [])]
        # a fresh inductor cache per row: a compiled row pays its whole compilation, as a first run would
        cache = args.scratch / "inductor" / name.replace(", ", "-").replace(" ", "_")
        shutil.rmtree(cache, ignore_errors=True)
        env = {**os.environ, **dict(row.env), "TORCHINDUCTOR_CACHE_DIR": str(cache)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            rows.append([name, f"failed: {' '.join(proc.stderr.strip().splitlines()[-1:])}", *["–"] * 7])
            print(f"{name}: {rows[-1][1]}", flush=True)
            continue
        r = results[name] = json.loads(lines[-1][len("RESULT "):])
        share, target = r["tokens_per_s"] / r["limit_tokens_per_s"], TARGETS[row.method]
        rows.append([name, f"{r['tokens_per_s']:.0f}", f"{r['step_s']:.1f}", f"{r['first_step_s']:.1f}",
                     f"{r['useful_share']:.0%}", f"{share:.0%} of {r['limit_tokens_per_s']:.0f}",
                     f"≥ {target:.0%}: {'met' if share >= target else 'not met'}", f"{r['peak_rss_gb']:.2f}",
                     f"{r['plan_gb']:.1f}"])
        print(f"{name}: {rows[-1][1]} tokens/s", flush=True)  # progress; the table comes at the end

    gemm = {}  # each row measured its dtype's GEMM in its own process: the median, and the range in a note
    for dtype in ("fp32", "bf16"):
        if rates := sorted(r["gemm_flops"] for n, r in results.items() if CONFIGS[n].precision == dtype):
            gemm[dtype] = rates[len(rates) // 2]
            notes.append(f"{dtype} GEMM in the rows' processes: {rates[0] / 1e9:.0f}–{rates[-1] / 1e9:.0f} GFLOP/s.")
    save("train", ["configuration", "tokens/s", "s/step", "first step s", "useful tokens", "share of limit", "target",
                   "peak RSS GB", "plan GB"], rows, notes + summarize(results, skip), gemm, "Training speed and memory")
    profiled = {name: r["profile"] for name, r in results.items() if r.get("profile")}
    if profiled:
        steps = [(name, profile.pop("step_s"), profile) for name, profile in profiled.items()]
        save("train.profile", ["configuration", "step s", "where it goes", "seconds", "share of the step"],
             [[name, f"{step:.1f}", category, f"{seconds:.2f}", f"{seconds / step:.0%}"]
              for name, step, profile in steps for category, seconds in sorted(profile.items(), key=lambda kv: -kv[1])],
             ["One more training step of each configuration, torch profiler, self CPU time."], gemm,
             "Where a training step goes")


def ratio(results: dict, a: str, b: str, key: str = "tokens_per_s") -> float | None:
    """results[a][key] / results[b][key] where both rows ran."""
    return results[a][key] / results[b][key] if {a, b} <= results.keys() else None


def summarize(results: dict, bf16_skipped: str | None) -> list[str]:
    """The ratios the targets and the README name, each from rows of this run."""
    notes = []
    packed = ratio(results, "bf16 packed, full", BASELINE)
    notes.append("bf16 + packing vs fp32 padded (own loss): " + (f"{packed:.2f}x useful tokens/s (target >= 3x: "
                 f"{'met' if packed >= 3 else 'not met'})" if packed else f"not measured: {bf16_skipped}"))
    for dtype in ("fp32", "bf16"):
        if fused := ratio(results, f"{dtype} packed, full", f"{dtype} packed, full, foreach AdamW"):
            notes.append(f"{dtype} fused vs foreach AdamW: {fused:.2f}x")
        if pinned := ratio(results, f"{dtype} packed, full, threads pinned", f"{dtype} packed, full"):
            notes.append(f"{dtype} threads pinned (OMP_PROC_BIND=close, OMP_PLACES=cores) vs not: {pinned:.2f}x")
        for method in ("full", "lora"):
            eager, compiled = f"{dtype} packed, {method}", f"{dtype} packed, {method}, compiled"
            if speed := ratio(results, compiled, eager):
                extra = results[compiled]["first_step_s"] - results[eager]["first_step_s"]
                saved = results[eager]["step_s"] - results[compiled]["step_s"]
                even = f"; {extra / saved:.0f} steps to pay for it" if saved > 0 and extra > 0 else ""
                notes.append(f"{dtype} {method}: compiled vs eager {speed:.2f}x per step; first step {extra:+.0f} s "
                             f"(compilation, fresh cache){even}")
    if own := ratio(results, "bf16 packed, full", "bf16 packed, full, own loss", "peak_rss_gb"):
        notes.append(f"chunked loss vs the model's own loss (bf16 packed, full): {own:.2f}x peak RSS")
    for dtype in ("fp32", "bf16"):
        if q := ratio(results, f"{dtype} packed, qlora", f"{dtype} packed, full", "peak_rss_gb"):
            notes.append(f"{dtype} qlora vs full fine-tune: {q:.2f}x peak RSS (target <= 0.5x)")
    return notes


if __name__ == "__main__":
    main()
