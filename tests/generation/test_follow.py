"""notelm.generation.follow on a tiny model: tau above 1 is plain greedy decoding, tau 0 copies the draft, and a
draft of the model's own greedy words changes nothing at any tau."""

from __future__ import annotations

import pytest

from notelm.generation.decoding import decode, prompt_ids
from notelm.generation.follow import follow
from notelm.training.weights import load_checkpoint
from tests.generation.test_suggest import greedy_ids

PROMPT = "Pt alert and oriented x3, follows commands."


@pytest.fixture
def tiny(tiny_model_factory):
    return load_checkpoint(tiny_model_factory("llama"))


def test_tau_above_one_is_the_model_alone(tiny):
    model, tokenizer = tiny
    own = greedy_ids(model, tokenizer, prompt_ids(tokenizer, PROMPT), 10)
    got = follow(model, tokenizer, PROMPT, lambda text: "HR 80s NSR", tau=1.5, budget=10, word_cap=100)
    assert (got.completion, got.completion_tokens, got.from_chart, got.stop) == (decode(tokenizer, own), 10, 0, "budget")


def test_tau_zero_copies_the_draft_whatever_the_model_says(tiny):
    model, tokenizer = tiny
    chart = "HR 80s NSR, BP stable. LS clear bilaterally."
    drafter = lambda text: chart[len(text) - len(PROMPT):].strip() if len(text) - len(PROMPT) < len(chart) else ""  # noqa: E731
    got = follow(model, tokenizer, PROMPT, drafter, tau=0.0, budget=40, word_cap=4)
    assert got.completion.split()[:4] == chart.split()[:4] and got.stop == "word_cap"
    assert got.from_chart >= len(prompt_ids(tokenizer, PROMPT + " HR 80s NSR, BP")) - len(prompt_ids(tokenizer, PROMPT))


def test_a_draft_of_the_models_own_tokens_changes_nothing(tiny, monkeypatch):
    """Drafted at the token level (whatever the tokenizer makes of a random model's text): the kept draft tokens
    and the model's own after a rejection are its greedy ones, at any tau; the cache is cropped right."""
    from notelm.generation import follow as module

    model, tokenizer = tiny
    own = greedy_ids(model, tokenizer, prompt_ids(tokenizer, PROMPT), 12)
    for tau in (0.0, 0.05, 2.0):
        for right in (1, 3):  # a draft of the next `right` greedy tokens and then a wrong one
            monkeypatch.setattr(module, "draft_tokens", lambda tok, text, words, confirmed, right=right: (
                greedy_ids(model, tok, confirmed, right) + [0]))
            got = follow(model, tokenizer, PROMPT, lambda text: "", tau, budget=12, word_cap=100)
            if tau == 0.0:  # the wrong token is kept too: the continuation leaves greedy's after `right` tokens
                assert got.from_chart > 0 and got.completion != decode(tokenizer, own)
            else:
                assert got.completion == decode(tokenizer, own) and got.completion_tokens == 12
