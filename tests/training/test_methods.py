"""Every architecture family of the matrix × every training method, on tiny random models.

Each case trains two steps, saves, reloads the merged checkpoint with
`AutoModelForCausalLM.from_pretrained` alone and generates from it.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from notelm.config.generate import GenerateParams
from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.generation.decoding import complete
from notelm.stages.train import train
from notelm.training.weights import prepare_tokenizer

LORA_TARGETS = {"gpt2": ["c_attn"], "opt": ["q_proj", "v_proj"], "llama": ["q_proj", "v_proj"],
                "qwen3": ["q_proj", "v_proj"], "gemma3": ["q_proj", "v_proj"],
                # the study's lost models whose architectures transformers has natively (params.yaml rows)
                "mpt": ["Wqkv"], "gpt_neo": ["q_proj", "v_proj"], "bitnet": ["q_proj", "v_proj"]}


def bitsandbytes_skip_reason() -> str | None:
    """Why QLoRA cannot run here, or None when a 4-bit NF4 layer does a forward pass on this machine."""
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(8, 8, compute_dtype=torch.float32, quant_type="nf4")
        layer = layer.to("cuda" if torch.cuda.is_available() else "cpu")
        layer(torch.ones(1, 8, device=layer.weight.device))
    except Exception as exc:  # noqa: BLE001 - any failure means "no 4-bit backend here"
        return f"bitsandbytes 4-bit does not run here: {type(exc).__name__}: {exc}"
    return None


CASES = [(family, method) for family in LORA_TARGETS for method in ("full", "lora", "qlora")]


@pytest.mark.parametrize(("family", "method"), CASES)
def test_train_save_reload_generate(prepared, tiny_model_factory, monkeypatch, family, method):
    if method == "qlora" and (reason := bitsandbytes_skip_reason()):
        pytest.skip(reason)
    monkeypatch.chdir(prepared)
    spec = ModelRow(name="tiny", source="unused", family=family, lora_targets=LORA_TARGETS[family])
    cfg = TrainParams(method=method, max_steps=2, batch_size=4, max_length=32, learning_rate=1e-3, precision="fp32")
    base = tiny_model_factory(family)
    summary = train(cfg, spec, base)
    assert summary["steps"] == 2 and summary["method"] == method

    out = prepared / "models/finetuned"
    assert json.loads((out / "notelm_train.json").read_text())["method"] == method
    model = AutoModelForCausalLM.from_pretrained(out)  # the merged checkpoint, no peft needed
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    if method != "full":
        assert (out / "adapter/adapter_config.json").is_file()
        before = AutoModelForCausalLM.from_pretrained(base).state_dict()
        changed = [k for k, v in model.state_dict().items() if k in before and not torch.equal(v, before[k])]
        assert changed and all(any(t in k for t in LORA_TARGETS[family]) for k in changed), changed[:5]

    from transformers import AutoTokenizer

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(out))
    [result] = complete(model.eval(), tokenizer, ["Pt alert and oriented"], GenerateParams(max_new_tokens=4))
    assert result["completion_tokens"] >= 1 and "Pt alert" not in result["completion"]


def test_qlora_keeps_training_every_layer_after_an_evaluation(tmp_path):
    """bitsandbytes' CPU inference repacking (on evaluation) must not cut the backward pass of later steps."""
    if reason := bitsandbytes_skip_reason():
        pytest.skip(reason)
    from tests.tiny import make_config, make_tokenizer

    tokenizer = make_tokenizer()
    config = make_config("llama", tokenizer)
    config.update({"hidden_size": 64, "intermediate_size": 128, "head_dim": 32})  # 4-bit blocks are 64 wide
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    from notelm.training.trainer import load_for_training

    spec = ModelRow(name="tiny", source="unused", lora_targets=["q_proj", "v_proj"])
    model, tokenizer = load_for_training(spec, "qlora", tmp_path, TrainParams(), "bf16")
    x = torch.tensor([tokenizer("Pt alert and oriented x3, follows commands")["input_ids"]])
    model.eval()
    with torch.no_grad():
        model(input_ids=x)
    model.train()
    model(input_ids=x, labels=x).loss.backward()
    first_layer = [p.grad for n, p in model.named_parameters() if ".layers.0." in n and p.requires_grad]
    assert first_layer and all(g is not None for g in first_layer)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_on_request(prepared, tiny_model_factory, monkeypatch, method):
    """train.gradient_checkpointing: true recomputes activations for full and LoRA too (the GPU plan's `+ ckpt`)."""
    from notelm.stages import train as train_stage

    monkeypatch.chdir(prepared)
    seen = []
    real = train_stage.make_trainer
    monkeypatch.setattr(train_stage, "make_trainer",
                        lambda model, *a, **kw: seen.append(model.is_gradient_checkpointing) or real(model, *a, **kw))
    spec = ModelRow(name="tiny", source="unused", family="llama", lora_targets=LORA_TARGETS["llama"])
    cfg = TrainParams(method=method, max_steps=2, batch_size=4, max_length=32, learning_rate=1e-3, precision="fp32",
                      gradient_checkpointing=True)
    assert train(cfg, spec, tiny_model_factory("llama"))["steps"] == 2
    assert seen == [True]
    assert not TrainParams(method=method).checkpointing(method) and TrainParams().checkpointing("qlora")
