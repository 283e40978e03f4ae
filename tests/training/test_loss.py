"""The chunked causal-LM loss equals each family's own loss, in value, gradients and training steps."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainingArguments

from notelm.training.loss import chunked_loss, forward_with_chunked_loss, supports
from notelm.training.trainer import make_trainer
from tests.tiny import make_config, make_tokenizer

FAMILIES = ["gpt2", "opt", "llama", "qwen3", "gemma3"]


def tiny(family: str, **overrides):
    tokenizer = make_tokenizer()
    config = make_config(family, tokenizer)
    config.update(overrides)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).float().eval(), tokenizer  # eval: no dropout


def batch(vocab: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """3 rows × 12 tokens; the last row is padded (mask 0, label -100) after 7 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_items", [None, 50])
def test_chunked_loss_and_gradients_equal_the_models_own(family, num_items):
    model, _ = tiny(family)
    assert supports(model)
    inputs = batch(model.config.vocab_size)
    kwargs = {"num_items_in_batch": torch.tensor(num_items)} if num_items else {}

    own = model(**inputs, **kwargs).loss
    own.backward()
    expected = grads(model)
    model.zero_grad()

    loss, outputs = forward_with_chunked_loss(model, model, inputs, chunk_tokens=5,
                                              num_items_in_batch=kwargs.get("num_items_in_batch"))
    loss.backward()
    got = grads(model)
    assert outputs.logits.shape[1] == 1  # only the last position's logits were made
    torch.testing.assert_close(loss, own, rtol=1e-5, atol=1e-6)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_gemma_soft_capping_is_applied_per_chunk():
    model, _ = tiny("gemma3", final_logit_softcapping=1.0, tie_word_embeddings=False)
    with torch.no_grad():
        model.lm_head.weight.mul_(100)  # logits far beyond the cap, so capping changes the loss a lot
    inputs = batch(model.config.vocab_size)
    own = model(**inputs).loss
    loss, _ = forward_with_chunked_loss(model, model, inputs, chunk_tokens=4)
    uncapped = chunked_loss(model.model(input_ids=inputs["input_ids"])[0], inputs["labels"],
                            model.lm_head, chunk_tokens=4)
    torch.testing.assert_close(loss, own, rtol=1e-5, atol=1e-6)
    assert abs(float(uncapped) - float(own)) > 0.1


def test_ignored_positions_do_not_count():
    hidden = torch.randn(1, 5, 8)
    head = torch.nn.Linear(8, 11, bias=False)
    labels = torch.tensor([[3, 4, -100, -100, -100]])  # one scored position: predicting 4 from position 0
    expected = torch.nn.functional.cross_entropy(head(hidden[0, :1]), labels[0, 1:2])
    torch.testing.assert_close(chunked_loss(hidden, labels, head, chunk_tokens=2), expected)


def test_families_outside_the_list_keep_their_own_loss():
    import transformers as tf

    tokenizer = make_tokenizer()
    config = tf.GPTNeoXConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=32, intermediate_size=64,
                              vocab_size=len(tokenizer))
    assert not supports(AutoModelForCausalLM.from_config(config))


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_training_with_the_chunked_loss_matches_the_models_own_loss(tmp_path, grad_accum):
    """Same seed, same data: the Trainer with chunked loss ends with the same weights and loss log."""
    from datasets import Dataset

    rows = [batch(400, seed=s) for s in range(4)]
    data = Dataset.from_dict({k: [r.tolist() for b in rows for r in b[k]] for k in rows[0]})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2,
                             gradient_accumulation_steps=grad_accum, learning_rate=0.5, logging_steps=1,
                             report_to="none", save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
                             optim="sgd")  # SGD: weights move in proportion to the gradients (Adam would amplify rounding)
    final = {}
    for chunk in (None, 7):
        model, _ = tiny("llama")
        trainer = make_trainer(model, args, chunk, train_dataset=data)
        trainer.train()
        final[chunk] = (model.state_dict(), [e["loss"] for e in trainer.state.log_history if "loss" in e])
    (own, own_log), (chunked, chunked_log) = final[None], final[7]
    assert own_log == pytest.approx(chunked_log, rel=1e-4)
    for name in own:
        torch.testing.assert_close(chunked[name], own[name], rtol=1e-4, atol=1e-5, msg=name)
    model, _ = tiny("llama")
    assert not torch.equal(model.state_dict()["lm_head.weight"], own["lm_head.weight"])  # training did move it


def test_under_bf16_autocast_the_chunked_loss_follows_the_models_own():
    model, _ = tiny("llama")
    inputs = batch(model.config.vocab_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        own = model(**inputs).loss
    own.backward()
    expected = grads(model)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = forward_with_chunked_loss(model, model, inputs, chunk_tokens=5)
    loss.backward()
    got = grads(model)
    torch.testing.assert_close(loss, own, rtol=2e-3, atol=1e-3)
    for name in expected:  # bf16 matmuls: agreement to bf16 precision, not fp32
        cos = torch.nn.functional.cosine_similarity(got[name].flatten(), expected[name].flatten(), dim=0)
        assert cos > 0.999, (name, float(cos))


def test_without_grad_mode_no_gradient_is_made_and_the_loss_is_the_same():
    hidden = torch.randn(2, 6, 8, requires_grad=True)
    head = torch.nn.Linear(8, 13, bias=False)
    labels = torch.randint(0, 13, (2, 6))
    with_grad = chunked_loss(hidden, labels, head, chunk_tokens=4)
    with torch.no_grad():
        without = chunked_loss(hidden, labels, head, chunk_tokens=4)
    assert not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach())
