"""notelm.generation.suggest on tiny models: every boundary at once, and one typist's cache reused, give the suggestions
decoding from scratch gives; proposals are read as words the way the simulated nurse matches them."""

from __future__ import annotations

import pytest

from notelm.generation.decoding import prompt_ids
from notelm.generation.suggest import Suggester, _finished, boundaries, decode_raw, proposal_words, propose_all
from notelm.training.weights import load_checkpoint

PROMPT = "Pt alert and oriented x3, follows commands."


def recompute(model, tokenizer, text: str, max_words: int, budget: int) -> list[str]:
    """The proposal after `text` decoded from scratch, every step a full forward without a cache (the reference
    that both ways must give)."""
    import torch

    ids, written = prompt_ids(tokenizer, text), []
    with torch.inference_mode():
        while len(written) < budget:
            logits = model(input_ids=torch.tensor([ids + written])).logits  # 1 × T × V
            written.append(int(logits[0, -1].argmax()))
            if _finished(tokenizer, written, "", max_words):
                break
    return proposal_words((text.split() or [""])[-1], decode_raw(tokenizer, written), max_words,
                          tokenizer.eos_token_id in written)
WORDS = "HR 80s NSR, BP stable. LS clear bilaterally, RA sats 97%.".split()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_all_boundaries_at_once_and_the_reused_cache_equal_decoding_from_scratch(tiny_model_factory, family):
    model, tokenizer = load_checkpoint(tiny_model_factory(family))
    batched = propose_all(model, tokenizer, PROMPT, WORDS, max_words=3, budget=12)
    typist = Suggester(model, tokenizer, max_words=3, budget=12)
    texts = [PROMPT + "".join(" " + w for w in WORDS[:i]) for i in range(len(WORDS))]
    incremental = [typist.propose(t) for t in texts]
    scratch = [recompute(model, tokenizer, t, 3, 12) for t in texts]
    assert batched == incremental == scratch and len(batched) == len(WORDS)
    assert any(batched)  # a random tiny model still proposes words
    assert typist.propose(texts[3]) == scratch[3] and typist.propose(texts[5]) == scratch[5]  # back and forth


def test_boundaries_cut_the_tokens_at_each_typed_word(tiny_model_factory):
    _, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    ids, cuts, gaps = boundaries(tokenizer, PROMPT, WORDS)
    assert cuts == sorted(cuts) and gaps == [""] * len(WORDS)
    for i, cut in enumerate(cuts):
        assert tokenizer.decode(ids[:cut], skip_special_tokens=True) == PROMPT + "".join(" " + w for w in WORDS[:i])


def test_proposal_words():
    assert proposal_words("x3,", " follows commands. HR", 2, ended=False) == ["follows", "commands."]
    assert proposal_words("x3,", " follows comm", 5, ended=False) == ["follows"]  # the last word was cut short
    assert proposal_words("x3,", " follows comm", 5, ended=True) == ["follows", "comm"]  # EOS ended it
    assert proposal_words("80s", ", NSR ", 5, ended=False) == ["80s,", "NSR"]  # a changed word is never the next one
