"""Causal-LM loss without the full logits tensor: the output layer and cross-entropy a chunk of tokens at a time.

A model's own loss materialises logits for every token of the batch: B·T·V values, kept in bf16 and
fp32, with their log-softmax and gradients — about 20 bytes per value. For small models with large
vocabularies that is most of the training memory (SmolLM2-135M, batch 8 × 256, V = 49,152: ~2 GB;
Gemma-3-270M, V = 262,144: ~10 GB). Here the model runs with `logits_to_keep=1`, its decoder's last
hidden states are taken from a forward hook, and the loss is summed over chunks of `chunk_tokens`
tokens, computing each chunk's gradients right away, so at most one chunk's logits exist at a time
and nothing is recomputed. The loss equals the model's own (`ForCausalLMLoss`:
labels shifted by one, -100 ignored, sum / `num_items_in_batch` or the mean) up to float rounding.

Only the families whose logits are a plain `lm_head(hidden)` (plus Gemma's optional soft-capping)
are chunked; `supports` says which, and the others keep their own loss.
"""

from __future__ import annotations

from typing import Any

import torch

# model_type values whose logits are lm_head(decoder output), checked in tests/training/test_loss.py
CHUNKABLE = frozenset({"gpt2", "opt", "llama", "mistral", "qwen2", "qwen3", "gemma3", "gemma3_text"})
IGNORE_INDEX = -100


def supports(model: torch.nn.Module) -> bool:
    """Whether `model` (a plain HF causal LM, not a peft wrapper) can take the chunked loss."""
    config = getattr(model, "config", None)
    return (
        getattr(config, "model_type", None) in CHUNKABLE
        and hasattr(model, "get_decoder")
        and isinstance(model.get_output_embeddings(), torch.nn.Linear)
        and model.get_output_embeddings().bias is None
    )


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropy(softcap(hidden @ weightᵀ), labels) over chunks of rows; the gradients of
    hidden and weight are computed in the same pass (as Liger-Kernel's fused linear cross-entropy does
    on GPUs), so no chunk is recomputed in backward and no chunk's logits outlive it."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, chunk_tokens, softcap, dtype, grads):
        need_h, need_w = grads and ctx.needs_input_grad[0], grads and ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype
        w = weight.to(dtype)
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, labels.numel(), chunk_tokens):
            part = slice(start, start + chunk_tokens)
            h, y = hidden[part].to(dtype), labels[part]
            logits = h @ w.T
            if softcap:
                capped = torch.tanh(logits.float() / softcap)
                logits = capped * softcap
            valid = y != IGNORE_INDEX
            all_valid = bool(valid.all())  # packed blocks: no ignored rows, so no masking passes
            target = y.clamp(min=0)
            logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
            picked = logp.gather(1, target[:, None])[:, 0]
            total -= picked.sum() if all_valid else (picked * valid).sum()
            if not (need_h or need_w):
                continue
            # d loss / d logits = softmax - one_hot(target), zero on ignored rows
            grad = logp.exp_()
            grad[torch.arange(len(y), device=y.device), target] -= 1
            if not all_valid:
                grad *= valid[:, None]
            if softcap:
                grad *= 1 - capped * capped
            grad = grad.to(dtype)
            if need_h:
                grad_h[part] = grad @ w
            if need_w:
                grad_w += grad.T @ h  # fp32 += compute dtype, without a separate upcast copy
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_h, grad_w = ctx.saved_tensors
        return (
            grad_h * grad_total if grad_h is not None else None,
            (grad_w * grad_total).to(ctx.weight_dtype) if grad_w is not None else None,
            None, None, None, None, None,
        )


def chunked_loss(hidden: torch.Tensor, labels: torch.Tensor, head: torch.nn.Linear, chunk_tokens: int,
                 softcap: float | None = None, num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Next-token cross-entropy of `head(hidden)` against `labels` (B × T), `chunk_tokens` tokens at a time.

    The matmuls run in the autocast dtype when autocast is on (as `head(hidden)` would), else in
    `hidden`'s dtype; the softmax in fp32. Returns the sum over non-ignored tokens divided by
    `num_items_in_batch` when given, else their mean.
    """
    h = hidden[:, :-1, :].reshape(-1, hidden.shape[-1])
    y = labels[:, 1:].reshape(-1).to(h.device)
    device = h.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else h.dtype
    grads = torch.is_grad_enabled()  # no gradient work in evaluation
    with torch.autocast(device, enabled=False):
        total = _LinearCrossEntropy.apply(h, head.weight, y, chunk_tokens, softcap, dtype, grads)
    if num_items_in_batch is None:
        return total / (y != IGNORE_INDEX).sum().clamp(min=1)
    return total / num_items_in_batch


def forward_with_chunked_loss(model: torch.nn.Module, inner: torch.nn.Module, inputs: dict[str, Any],
                              chunk_tokens: int, num_items_in_batch: torch.Tensor | int | None = None):
    """Run `model` (possibly wrapped: DDP, peft) on `inputs` and return (loss, outputs) with the chunked loss.

    `inner` is the unwrapped HF causal LM inside `model`; its decoder's output feeds the loss.
    `outputs.logits` holds only the last position's logits.
    """
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    captured: list[torch.Tensor] = []
    handle = inner.get_decoder().register_forward_hook(lambda _m, _a, out: captured.append(out[0]))
    try:
        outputs = model(**inputs, logits_to_keep=1)
    finally:
        handle.remove()
    # the last position's logits are not part of the loss: detached, their graph (which holds a copy of
    # the output layer's weight under autocast) is freed now rather than after backward
    outputs["logits"] = outputs["logits"].detach()
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    loss = chunked_loss(captured[-1], labels, inner.get_output_embeddings(), chunk_tokens, softcap, num_items_in_batch)
    return loss, outputs
