"""Batched generation: continuation only, order preserved, identical to one-at-a-time greedy."""

from __future__ import annotations

import pytest

from notelm.config import ParamsError, load_section
from notelm.generate import GenerateConfig, complete, generate
from notelm.io import read_jsonl
from notelm.models import load_checkpoint


def test_batched_greedy_equals_one_at_a_time(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts = ["Pt alert and", "LS clear bilaterally, RA sats 97%. Abd soft", "Plan:", "Skin intact. Pain"]
    cfg = GenerateConfig(max_new_tokens=6, batch_size=4)
    batched = complete(model, tok, prompts, cfg)
    single = [complete(model, tok, [p], GenerateConfig(max_new_tokens=6, batch_size=1))[0] for p in prompts]
    assert [b["completion"] for b in batched] == [s["completion"] for s in single]
    assert [b["prompt_tokens"] for b in batched] == [len(tok(p)["input_ids"]) for p in prompts]


def test_generations_hold_the_continuation_only(prepared, tiny_model_factory):
    cfg = GenerateConfig(max_new_tokens=5, batch_size=3)
    out = prepared / "generations/pretrained.jsonl"
    summary = generate(tiny_model_factory("gpt2"), prepared / "data/prepared/test.jsonl", out, cfg)
    rows = read_jsonl(out)
    test = read_jsonl(prepared / "data/prepared/test.jsonl")
    assert summary["examples"] == len(rows) == len(test)
    for row, ex in zip(rows, test):
        assert set(row) >= {"note_id", "prompt", "reference", "completion", "prompt_tokens", "completion_tokens"}
        assert row["note_id"] == ex["note_id"] and row["reference"] == ex["target"]
        assert not row["completion"].startswith(ex["prompt"])
        assert 0 < row["completion_tokens"] <= 5


def test_long_prompts_keep_their_end(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    long_prompt = "Pt alert and oriented x3. " * 50
    (res,) = complete(model, tok, [long_prompt], GenerateConfig(max_new_tokens=2, max_prompt_tokens=20))
    assert res["prompt_tokens"] == 20


def test_generate_config_validation():
    with pytest.raises(ParamsError, match="generate.batch_size"):
        load_section(GenerateConfig, {"generate": {"batch_size": 0}}, "generate")


def test_target_nll_scores_only_the_target(tiny_model_factory):
    import math

    import torch

    from notelm.generate import target_nll

    model, tok = load_checkpoint(tiny_model_factory("llama"))
    cfg = GenerateConfig(batch_size=2)
    prompts, targets = ["Pt alert and", "Plan: continue to monitor, wean"], ["oriented x3.", "levophed as tolerated"]
    batched = target_nll(model, tok, prompts, targets, cfg)
    for (nll, n), prompt, target in zip(batched, prompts, targets):
        p = tok(prompt)["input_ids"]
        t = tok(" " + target, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + t])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        expected = -sum(logp[len(p) - 1 + i, tok_id].item() for i, tok_id in enumerate(t))
        assert n == len(t)
        assert math.isclose(nll, expected, rel_tol=1e-4)
