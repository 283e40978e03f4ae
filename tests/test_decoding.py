"""decoding.py: batched greedy equals one at a time, prompts keep their end, only the target is scored."""

from __future__ import annotations

import math

import torch

from notelm.decoding import complete, stream_completion, target_nll, timed_completion
from notelm.params import GenerateParams
from notelm.weights import load_checkpoint


def test_batched_greedy_equals_one_at_a_time(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts = ["Pt alert and", "LS clear bilaterally, RA sats 97%. Abd soft", "Plan:", "Skin intact. Pain"]
    batched = complete(model, tok, prompts, GenerateParams(max_new_tokens=6, batch_size=4))
    single = [complete(model, tok, [p], GenerateParams(max_new_tokens=6, batch_size=1))[0] for p in prompts]
    assert [b["completion"] for b in batched] == [s["completion"] for s in single]
    assert [b["prompt_tokens"] for b in batched] == [len(tok(p)["input_ids"]) for p in prompts]


def test_streaming_and_timed_completion_equal_the_batched_text(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("gpt2"))
    cfg = GenerateParams(max_new_tokens=6, batch_size=1)
    (batched,) = complete(model, tok, ["Pt alert and"], cfg)
    *_, (text, tokens) = stream_completion(model, tok, "Pt alert and", cfg)
    timed = timed_completion(model, tok, "Pt alert and", cfg)
    assert text == batched["completion"] == timed["completion"]
    assert tokens == batched["completion_tokens"] and timed["seconds"] > 0 and timed["tokens_per_s"] > 0


def test_long_prompts_keep_their_end(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    long_prompt = "Pt alert and oriented x3. " * 50
    (res,) = complete(model, tok, [long_prompt], GenerateParams(max_new_tokens=2, max_prompt_tokens=20))
    assert res["prompt_tokens"] == 20


def test_target_nll_scores_only_the_target(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts, targets = ["Pt alert and", "Plan: continue to monitor, wean"], ["oriented x3.", "levophed as tolerated"]
    batched = target_nll(model, tok, prompts, targets, GenerateParams(batch_size=2))
    for (nll, n), prompt, target in zip(batched, prompts, targets):
        p = tok(prompt)["input_ids"]
        t = tok(" " + target, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([p + t])).logits[0, :-1].float(), -1)
        expected = -sum(logp[len(p) - 1 + i, tok_id].item() for i, tok_id in enumerate(t))
        assert n == len(t)
        assert math.isclose(nll, expected, rel_tol=1e-4)
