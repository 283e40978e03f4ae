"""torch.compile, opt-in for training (train.compile) and decoding (generate.compile): the compiled paths give
the eager results. Compiling costs seconds (inductor writes and builds C++), so these use 2-layer tiny models."""

from __future__ import annotations

import copy

import pytest
import torch

from notelm.config.generate import GenerateParams
from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.generation.decoding import cache_kwargs, complete
from notelm.training.loss import chunked_loss
from notelm.training.trainer import compile_layers, decoder_layers, load_for_training
from notelm.training.weights import load_checkpoint

PROMPTS = ["Pt alert and oriented x3, follows commands.", "LS clear", "Plan: continue to monitor, wean levophed as"]


def _compiled(layer) -> bool:
    return getattr(layer, "_compiled_call_impl", None) is not None


def _loss_and_grads(model, ids):
    """The train stage's loss (chunked, 7 tokens a chunk) of one batch, and every trainable weight's gradient."""
    model.zero_grad()
    hidden = model.get_decoder()(input_ids=ids).last_hidden_state  # B × T × H
    value = chunked_loss(hidden, ids, model.get_output_embeddings(), 7)
    value.backward()
    return value.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_a_compiled_model_gives_the_eager_loss_and_gradients(tiny_model_factory):
    eager, _ = load_checkpoint(tiny_model_factory("llama"))
    compiled = copy.deepcopy(eager)
    assert compile_layers(compiled) == 2 and all(_compiled(layer) for layer in decoder_layers(compiled))
    ids = torch.randint(0, eager.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    loss_e, grads_e = _loss_and_grads(eager.train(), ids)
    loss_c, grads_c = _loss_and_grads(compiled.train(), ids)
    # fused kernels sum in another order: equal to fp32 rounding, far below one optimizer step's change
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    assert grads_c.keys() == grads_e.keys() and len(grads_e) > 10
    for name, grad in grads_e.items():
        torch.testing.assert_close(grads_c[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # checkpoints and resume see the same keys


def test_train_compile_compiles_the_layers_of_full_and_lora_runs_and_is_off_by_default(tiny_model_factory):
    model_dir = tiny_model_factory("llama")
    row = ModelRow(name="tiny", source=str(model_dir), lora_targets=["q_proj", "v_proj"])
    assert TrainParams().compile is False
    plain, _ = load_for_training(row, "full", model_dir, TrainParams(), "fp32")
    assert not any(_compiled(layer) for layer in decoder_layers(plain))
    for method in ("full", "lora"):
        model, _ = load_for_training(row, method, model_dir, TrainParams(compile=True), "fp32")
        inner = model.get_base_model() if method == "lora" else model
        assert all(_compiled(layer) for layer in decoder_layers(inner)), method


def test_generate_compile_switches_the_static_cache_step_to_a_compiled_one(tiny_model_factory):
    model, _ = load_checkpoint(tiny_model_factory("llama"))
    assert GenerateParams().compile is False
    assert cache_kwargs(model) == {"cache_implementation": "static", "disable_compile": True}
    on = cache_kwargs(model, compile=True)
    assert on["cache_implementation"] == "static" and "disable_compile" not in on
    assert on["compile_config"]._compile_all_devices and on["compile_config"].dynamic is True
    gpt2, _ = load_checkpoint(tiny_model_factory("gpt2"))
    if not getattr(gpt2, "_can_compile_fullgraph", False):  # no static cache: nothing to compile over
        assert cache_kwargs(gpt2, compile=True) == {}


def test_compiled_greedy_decoding_writes_the_eager_continuations_in_fp32(tiny_model_factory):
    model, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    cfg = GenerateParams(max_new_tokens=12, batch_size=2)
    eager = complete(model, tokenizer, PROMPTS, cfg)
    compiled = complete(model, tokenizer, PROMPTS, GenerateParams(max_new_tokens=12, batch_size=2, compile=True))
    assert [r["completion_tokens"] for r in eager] == [12, 12, 12]  # random weights: no EOS, the whole budget
    assert compiled == eager
