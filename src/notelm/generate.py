"""The `generate` stage: complete every test prompt with one model (pretrained base or fine-tuned).

Decoding is batched: prompts are sorted by length (so a batch wastes little on padding),
left-padded, and decoded with the KV cache; greedy by default. Each output line holds the
continuation only — the tokens after the prompt — never the prompt itself:

    {"note_id", "prompt", "reference", "completion", "prompt_tokens", "completion_tokens", "seconds",
     "target_nll", "target_tokens"}

`seconds` is the wall time of the example's batch divided by the batch size. `target_nll` is the
summed negative log-likelihood (nats) of the reference given the prompt under the same model, over
`target_tokens` tokens: evaluate turns it into the model's perplexity on the test targets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config import NoteLMError, ParamsError, load_section
from notelm.io import read_jsonl, write_jsonl
from notelm.models import base_dir, load_checkpoint

log = logging.getLogger(__name__)

VARIANTS = ("pretrained", "finetuned")


@dataclass(frozen=True)
class GenerateConfig:
    """The `generate:` section of params.yaml."""

    max_new_tokens: int = 64
    batch_size: int = 16
    max_prompt_tokens: int = 384  # longer prompts keep their last tokens (the part next to the continuation)
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    limit: int | None = None  # first N test examples only (quick runs)
    dtype: str = "float32"
    test_path: str = "data/prepared/test.jsonl"
    output_dir: str = "generations"
    finetuned_dir: str = "models/finetuned"

    def __post_init__(self) -> None:
        for key in ("max_new_tokens", "batch_size", "max_prompt_tokens"):
            if getattr(self, key) < 1:
                raise ParamsError(f"params.yaml: generate.{key}: must be >= 1, got {getattr(self, key)}")
        if self.limit is not None and self.limit < 1:
            raise ParamsError(f"params.yaml: generate.limit: must be >= 1 or null, got {self.limit}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ParamsError(f"params.yaml: generate.dtype: {self.dtype!r} is not float32, bfloat16 or float16")


def complete(model, tokenizer, prompts: list[str], cfg: GenerateConfig) -> list[dict[str, Any]]:
    """Continue each prompt; return per prompt {completion, prompt_tokens, completion_tokens, seconds}.

    Results come back in the order of `prompts`. The completion is decoded from the generated
    tokens only, up to the first EOS, so it never contains the prompt.
    """
    import torch

    if not prompts:
        return []
    tokenizer.padding_side = "left"
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"][-cfg.max_prompt_tokens :] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    decoding: dict[str, Any] = {"do_sample": cfg.do_sample, "repetition_penalty": cfg.repetition_penalty}
    if cfg.do_sample:
        decoding.update(temperature=cfg.temperature, top_p=cfg.top_p)
    else:
        decoding.update(temperature=None, top_p=None, top_k=None)
    torch.manual_seed(cfg.seed)
    for start in range(0, len(order), cfg.batch_size):
        batch = order[start : start + cfg.batch_size]
        width = max(len(encoded[i]) for i in batch)
        input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
        attention = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
        tick = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos, use_cache=True, **decoding,
            )
        seconds = (time.perf_counter() - tick) / len(batch)
        for row, i in enumerate(batch):
            new = out[row, width:].tolist()
            if eos is not None and eos in new:
                new = new[: new.index(eos) + 1]
            results[i] = {
                "completion": tokenizer.decode(new, skip_special_tokens=True).strip(),
                "prompt_tokens": len(encoded[i]),
                "completion_tokens": len(new),
                "seconds": round(seconds, 4),
            }
    return results  # type: ignore[return-value]


def target_nll(model, tokenizer, prompts: list[str], targets: list[str], cfg: GenerateConfig) -> list[tuple[float, int]]:
    """Summed negative log-likelihood (nats) of each target given its prompt, and the target's token count.

    The prompt is cut to its last `max_prompt_tokens` tokens, as for generation; batches are
    right-padded and only target tokens are scored. Evaluate turns these into perplexity.
    """
    import torch

    results: list[tuple[float, int]] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(prompts), cfg.batch_size):
        seqs, masks = [], []
        for prompt, target in zip(prompts[start : start + cfg.batch_size], targets[start : start + cfg.batch_size]):
            p = tokenizer(prompt, add_special_tokens=True)["input_ids"][-cfg.max_prompt_tokens :]
            t = tokenizer(" " + target, add_special_tokens=False)["input_ids"]
            seqs.append(p + t)
            masks.append([0] * len(p) + [1] * len(t))
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
        attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        scored = torch.tensor([m + [0] * (width - len(m)) for m in masks])
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        token_lp = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1).to(logits.device)).squeeze(-1).cpu()
        weights = scored[:, 1:]
        for row in range(len(seqs)):
            results.append((float(-(token_lp[row] * weights[row]).sum()), int(weights[row].sum())))
    return results


def generate(model_dir: Path, test_path: Path, out_path: Path, cfg: GenerateConfig) -> dict[str, Any]:
    """Complete every example of `test_path` with the checkpoint in `model_dir`; write `out_path` atomically."""
    if not test_path.is_file():
        raise NoteLMError(f"{test_path}: test split not found; run `dvc repro prepare` first")
    rows = read_jsonl(test_path)
    if cfg.limit is not None:
        rows = rows[: cfg.limit]
    model, tokenizer = load_checkpoint(model_dir, cfg.dtype)
    tick = time.perf_counter()
    outputs = complete(model, tokenizer, [r["prompt"] for r in rows], cfg)
    seconds = time.perf_counter() - tick
    nll = target_nll(model, tokenizer, [r["prompt"] for r in rows], [r["target"] for r in rows], cfg)
    lines = [
        {"note_id": r["note_id"], "prompt": r["prompt"], "reference": r["target"], **o,
         "target_nll": round(n, 4), "target_tokens": t}
        for r, o, (n, t) in zip(rows, outputs, nll)
    ]
    write_jsonl(out_path, lines)
    tokens = sum(o["completion_tokens"] for o in outputs)
    log.info("generate: %d completions, %d tokens in %.1fs (%.1f tokens/s) -> %s",
             len(lines), tokens, seconds, tokens / max(seconds, 1e-9), out_path)
    return {"examples": len(lines), "completion_tokens": tokens, "seconds": seconds}


def run(params: dict[str, Any], variant: str) -> dict[str, Any]:
    """The `generate_<variant>` stage: `pretrained` uses models/base/<model>, `finetuned` models/finetuned."""
    if variant not in VARIANTS:
        raise NoteLMError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    cfg = load_section(GenerateConfig, params, "generate")
    model_dir = base_dir(params) if variant == "pretrained" else Path(cfg.finetuned_dir)
    return generate(model_dir, Path(cfg.test_path), Path(cfg.output_dir) / f"{variant}.jsonl", cfg)
