"""Model-free drafts for the Suggester to verify: guesses at the next words that the model checks in one forward.

A `Drafter` maps the text so far (what was typed, then what the model has written) to the words it expects next,
as text to append ('' for no guess). A draft never changes a suggestion: the Suggester keeps only the draft
tokens that equal the model's own greedy choices (notelm.generation.suggest). A good draft saves forwards; a
wrong one costs nothing but the few extra positions of a forward that happens anyway.

The drafters that read the chart and the train notes (the `chart_copy` and `ngram` proposers) live with the
proposers in notelm.evaluation.proposers; `words_drafter` turns any of them into a Drafter. This module holds the
one that needs nothing but the text (prompt lookup, Saxena 2023: a span the text already contains is copied on).
"""

from __future__ import annotations

from collections.abc import Callable

from notelm.generation.decoding import prompt_ids

Drafter = Callable[[str], str]

# Draft tokens offered at most in one forward: a rejected draft still costs the positions it adds to the forward,
# so a drafter that keeps being wrong is offered fewer (benchmarks/suggest.py measures the latency either way).
MAX_OFFER = 16


def next_offer(offer: int, offered: int, kept: int) -> int:
    """How many draft tokens to offer next: twice as many after a whole offer was kept, half after its first token
    was rejected (at least one), the same otherwise; unchanged when nothing was offered."""
    if not offered:
        return offer
    return min(MAX_OFFER, 2 * offer) if kept == offered else max(1, offer // 2) if not kept else offer


def lookup(words: list[str], k: int, context: int = 2) -> list[str]:
    """The `k` words that followed the most recent earlier occurrence of `words`' last `context` words (backing
    off to fewer), or [] when they occur nowhere before."""
    for n in range(min(context, len(words) - 1), 0, -1):
        tail = words[-n:]
        for start in range(len(words) - n - 1, -1, -1):  # the most recent occurrence before the tail itself
            if words[start:start + n] == tail:
                return words[start + n:start + n + k]
    return []


def prompt_lookup(k: int, context: int = 2) -> Drafter:
    """A Drafter copying the `k` words that followed the text's last `context` words where they last occurred."""
    return lambda text: " ".join(lookup(text.split(), k, context))


def words_drafter(propose: Callable[[list[str]], list[str]], view: Callable[[str], str] = lambda t: t) -> Drafter:
    """A Drafter from a word proposer: `propose(words of view(text))` gives the next words (`view` picks the part
    of the text it reads, e.g. the note without its history)."""
    return lambda text: " ".join(propose(view(text).split()))


def draft_tokens(tokenizer, text: str, words: str, confirmed: list[int], glue: bool = True) -> list[int]:
    """`words` drafted after `text` as the tokens that follow `confirmed` (the tokens of `text`): [] for no words,
    or when the text with the words does not tokenise as `confirmed` and more. `glue`: put a space between a text
    and words that meet without one (a drafter's words are words; a continuation goes on as it is)."""
    if not words.strip():
        return []
    space = " " if glue and not text[-1:].isspace() and not words[:1].isspace() else ""
    ids = prompt_ids(tokenizer, text + space + words)
    return ids[len(confirmed):] if ids[: len(confirmed)] == confirmed and len(ids) > len(confirmed) else []
