"""The memory plan: estimates grow with what they should, refusals say what would fit, the table covers every row."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notelm.config.models import METHODS, ModelRow, model_rows
from notelm.config.train import TrainParams
from notelm.core.errors import NoteLMError
from notelm.training import plan
from notelm.training.plan import GB, Shape, estimate, model_shape

CATALOGUE = Path(__file__).resolve().parents[2] / "configs/models.yaml"
from notelm.stages.train import train


@st.composite
def shapes(draw) -> Shape:
    """Transformer-like shapes: embeddings plus ~12·H² parameters per layer."""
    layers, hidden = draw(st.integers(2, 96)), draw(st.integers(32, 8192))
    vocab, tied = draw(st.integers(256, 300_000)), draw(st.booleans())
    return Shape(vocab * hidden * (1 if tied else 2) + 12 * hidden * hidden * layers, layers, hidden, vocab, tied)


methods = st.sampled_from(METHODS)


@given(shapes(), methods, st.integers(1, 64), st.integers(8, 4096), st.booleans())
def test_estimate_grows_with_batch_length_and_size(shape, method, batch, length, bf16):
    total = estimate(shape, method, batch, length, bf16)["total"]
    assert estimate(shape, method, batch + 1, length, bf16)["total"] > total
    assert estimate(shape, method, batch, length + 1, bf16)["total"] > total
    bigger = Shape(shape.parameters * 2, shape.layers, shape.hidden, shape.vocab, shape.tied)
    assert estimate(bigger, method, batch, length, bf16)["total"] > total


@given(shapes(), st.integers(1, 64), st.integers(8, 4096), st.booleans())
def test_lighter_methods_need_less(shape, batch, length, bf16):
    full, lora, qlora = (estimate(shape, m, batch, length, bf16)["total"] for m in METHODS)
    assert full > lora > qlora


def test_shape_is_read_from_a_materialised_checkpoint(tiny_model_factory):
    from transformers import AutoModelForCausalLM

    directory = tiny_model_factory("gpt2")
    model = AutoModelForCausalLM.from_pretrained(directory)
    shape = model_shape(ModelRow(name="tiny", source="x"), directory)
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    assert (shape.layers, shape.hidden, shape.vocab) == (2, 32, model.config.vocab_size)


def test_shape_falls_back_to_the_row_and_is_none_when_unknown(tmp_path):
    row = ModelRow(name="m", source="x", parameters=82_000_000, layers=6, hidden=768, vocab=50257)
    assert model_shape(row, tmp_path / "absent") == Shape(82_000_000, 6, 768, 50257)
    assert model_shape(ModelRow(name="m", source="x"), tmp_path / "absent") is None


SPEC = ModelRow(name="big", source="x", parameters=1_100_000_000, layers=22, hidden=2048, vocab=32000)
CHUNK = TrainParams().loss_chunk_tokens


def test_the_chunked_loss_caps_the_logits_term():
    shape = Shape(268_000_000, 18, 640, 262_144)  # Gemma-3-270M: the logits dominate
    own = {b: estimate(shape, "full", b, 256, True)["logits"] for b in (4, 8)}
    chunked = {b: estimate(shape, "full", b, 256, True, loss_chunk_tokens=512)["logits"] for b in (4, 8)}
    assert own[8] == 2 * own[4]  # grows with the batch
    assert chunked[8] < own[8] / 4
    assert chunked[8] - chunked[4] == 4 * 4 * 256 * 640  # only the hidden-state gradient grows with it


def test_refusal_names_what_would_fit(monkeypatch, tmp_path):
    shape = model_shape(SPEC)
    need = {m: estimate(shape, m, 8, 256, False, 16, 2, CHUNK)["total"] for m in METHODS}
    monkeypatch.setattr(plan, "available_memory", lambda: ((need["lora"] + need["full"]) / 2, "RAM"))
    lora = TrainParams(batch_size=8, max_length=256, method="lora")
    assert plan.check(SPEC, tmp_path, lora, False)["estimate_gb"] == round(need["lora"] / GB, 2)
    with pytest.raises(NoteLMError) as err:
        plan.check(SPEC, tmp_path, TrainParams(batch_size=8, max_length=256, method="full"), False)
    message = str(err.value)
    assert "big" in message and f"~{need['full'] / GB:.1f} GB" in message
    assert "`-S train.method=lora`" in message and "`-S train.method=qlora`" in message
    assert "train.check_memory=false" in message


def test_refusal_offers_a_smaller_batch_with_the_same_effective_batch(monkeypatch, tmp_path):
    shape = model_shape(SPEC)
    at = {b: estimate(shape, "qlora", b, 256, False, 16, 2, CHUNK)["total"] for b in (1, 2, 4, 8)}
    monkeypatch.setattr(plan, "available_memory", lambda: ((at[2] + at[4]) / 2, "RAM"))
    with pytest.raises(NoteLMError, match=r"`-S train.batch_size=2 -S train.grad_accum=8`"):
        plan.check(SPEC, tmp_path, TrainParams(batch_size=8, grad_accum=2, max_length=256, method="qlora"), False)
    monkeypatch.setattr(plan, "available_memory", lambda: (at[1] / 2, "RAM"))
    with pytest.raises(NoteLMError, match="Nothing fits at batch 1"):
        plan.check(SPEC, tmp_path, TrainParams(batch_size=8, max_length=256, method="qlora"), False)


def test_train_refuses_before_loading_and_writes_nothing(prepared, tiny_model_factory, monkeypatch):
    monkeypatch.chdir(prepared)
    monkeypatch.setattr(plan, "available_memory", lambda: (1024.0, "RAM"))
    spec = ModelRow(name="tiny", source="unused", family="llama")
    with pytest.raises(NoteLMError, match="needs ~"):
        train(TrainParams(max_steps=1, batch_size=2, max_length=16), spec, tiny_model_factory("llama"))
    assert not (prepared / "models").exists() and not (prepared / "dvclive").exists()
    # the escape hatch
    summary = train(TrainParams(max_steps=1, batch_size=2, max_length=16, check_memory=False), spec,
                    tiny_model_factory("llama"))
    assert summary["steps"] == 1


@given(shapes(), methods, st.integers(1, 16), st.integers(8, 1024), st.integers(2, 16))
def test_checkpointing_and_sharding_never_need_more(shape, method, batch, length, shards):
    plain = estimate(shape, method, batch, length, True, checkpointing=False, gpu=True)["total"]
    assert estimate(shape, method, batch, length, True, checkpointing=True, gpu=True)["total"] <= plain
    assert estimate(shape, "full", batch, length, True, gpu=True, shards=shards)["total"] <= \
        estimate(shape, "full", batch, length, True, gpu=True)["total"]


def test_under_an_fsdp_launch_the_check_counts_the_weights_as_sharded(monkeypatch, tmp_path):
    row = model_rows(CATALOGUE)["mpt-7b"]
    cfg = TrainParams(method="full", batch_size=1, max_length=256)
    monkeypatch.setattr(plan, "available_memory", lambda: (40 * GB, "RAM"))
    with pytest.raises(NoteLMError, match="needs ~"):
        plan.check(row, tmp_path / "none", cfg, bf16=True)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert plan.fsdp_shards() == 8
    assert plan.check(row, tmp_path / "none", cfg, bf16=True)["estimate_gb"] < 40
