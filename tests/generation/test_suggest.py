"""notelm.generation.suggest on tiny models: every boundary at once, and one typist's cache reused, give the suggestions
decoding from scratch gives; proposals are read as words the way the simulated nurse matches them."""

from __future__ import annotations

import pytest

from notelm.generation.decoding import prompt_ids
import math

from notelm.generation.suggest import (
    Suggester,
    _finished,
    _word_starts,
    boundaries,
    candidate_probabilities,
    decode_raw,
    proposal_words,
    propose_all,
)
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


def test_rows_that_follow_the_note_give_the_greedy_suggestions(tiny_model_factory):
    """A note made of the model's own greedy text: many boundaries' proposals follow the note's tokens (taken from
    the note's one forward, not decoded) before they leave it."""
    import torch

    model, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    words = Suggester(model, tokenizer, 40, 60).propose_text(PROMPT)[0].split()[:12]
    ids, cuts, _ = boundaries(tokenizer, PROMPT, words)
    with torch.inference_mode():
        choice = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
    assert sum(choice[c - 1] == ids[c] for c in cuts if c < len(ids)) >= 2  # the case under test happens
    texts = [PROMPT + "".join(" " + w for w in words[:i]) for i in range(len(words))]
    assert propose_all(model, tokenizer, PROMPT, words, 3, 12) == [recompute(model, tokenizer, t, 3, 12) for t in texts]


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


def greedy_ids(model, tokenizer, ids: list[int], n: int) -> list[int]:
    """The model's next `n` greedy tokens after `ids`, each from a full forward without a cache."""
    import torch

    out: list[int] = []
    with torch.inference_mode():
        for _ in range(n):
            out.append(int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax()))
    return out


class TokenDrafts(Suggester):
    """A Suggester whose draft is the model's own next greedy tokens, `right` of them, then `wrong` other tokens:
    the verification tested at the token level, whatever the tokenizer makes of words."""

    def __init__(self, *args, right: int, wrong: int):
        super().__init__(*args)
        self.right, self.wrong = right, wrong

    def _draft(self, text: str, confirmed: list[int]) -> list[int]:
        own = greedy_ids(self.model, self.tokenizer, confirmed, self.right + self.wrong)
        return own[: self.right] + [(t + 1) % len(self.tokenizer) for t in own[self.right:]]


def rounds(written: int, right: int, budget: int) -> int:
    """Forwards a typist needs to write `written` tokens when every draft holds `right` right tokens first: each
    forward keeps those that fit the budget beside the model's own token, and adds that one."""
    done = forwards = 0
    while done < written:
        done, forwards = done + min(right, budget - done - 1) + 1, forwards + 1
    return forwards


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize(("right", "wrong"), [(0, 4), (2, 3), (5, 0)])
def test_verified_drafts_give_the_greedy_suggestions(tiny_model_factory, family, right, wrong):
    model, tokenizer = load_checkpoint(tiny_model_factory(family))
    texts = [PROMPT + "".join(" " + w for w in WORDS[:i]) for i in range(len(WORDS))]
    plain, drafted = Suggester(model, tokenizer, 3, 12), TokenDrafts(model, tokenizer, 3, 12, right=right, wrong=wrong)
    for text in texts:
        assert drafted.propose_text(text) == plain.propose_text(text)
        assert drafted.work.written == plain.work.written and drafted.work.accepted <= right * drafted.work.forwards
        if right == 0:  # a draft rejected at its first token costs no forward more
            assert (drafted.work.forwards, drafted.work.accepted) == (plain.work.forwards, 0)
        else:  # each forward keeps its right tokens (as many as the budget leaves room for) and adds its own
            assert drafted.work.forwards == rounds(plain.work.written, right, budget=12)


def test_word_drafters_are_verified_and_never_change_the_words(tiny_model_factory):
    model, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    texts = [PROMPT + "".join(" " + w for w in WORDS[:i]) for i in range(len(WORDS))]
    plain = Suggester(model, tokenizer, 3, 12)
    generated = {t: plain.propose_text(t)[0] for t in texts}
    own = lambda text: next((g for t, g in generated.items() if text == t), "")  # noqa: E731 - the model's own words
    for drafters in ([own, lambda text: "zebra quokka"], [lambda text: "zebra quokka", own]):
        typist, offered = Suggester(model, tokenizer, 3, 12, drafters=drafters), 0
        for text in texts:
            assert typist.propose_text(text)[0] == generated[text]
            offered += typist.work.drafted
        assert offered  # drafts were offered, kept or not: the words are the same




def brute_probability(model, tokenizer, typed: str, cand: list[str]) -> list[float]:
    """P(the text after `typed` begins with cand's first j words, each whole), from full forwards of each text."""
    import torch

    starts = set(_word_starts(tokenizer))
    out = []
    for j in range(1, len(cand) + 1):
        text = typed + "".join(" " + w for w in cand[:j])
        base, ids = prompt_ids(tokenizer, typed), prompt_ids(tokenizer, text)
        assert ids[: len(base)] == base  # the cases below tokenise without a straddling token
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        value = sum(float(logp[t - 1, ids[t]]) for t in range(len(base), len(ids)))
        value += float(torch.logsumexp(logp[-1, sorted(starts)], -1))
        out.append(math.exp(value))
    return out


def test_candidate_probabilities_in_one_forward_equal_each_text_read_alone(tiny_model_factory):
    model, tokenizer = load_checkpoint(tiny_model_factory("llama"))
    cands = [[["HR", "80s"], ["BP", "stable."]], [["80s", "NSR,"]], [], [["stable.", "LS"], ["clear", "RA"]]]
    got = candidate_probabilities(model, tokenizer, PROMPT, WORDS[:4], cands)
    for i, per in enumerate(cands):
        typed = PROMPT + "".join(" " + w for w in WORDS[:i])
        for cand, probs in zip(per, got[i]):
            assert probs == pytest.approx(brute_probability(model, tokenizer, typed, cand), rel=1e-4)
            assert probs == sorted(probs, reverse=True) or len(probs) == 1  # a longer prefix is never likelier
    assert got[2] == []  # no candidate, no probability
