"""Word suggestions from a causal language model: its next words after the typed text, greedily. Used by the
suggest stage (`propose_all`: every word boundary of a note at once), the app and benchmarks/suggest.py
(`Suggester`: one typist, the KV cache of what was typed kept from one suggestion to the next). The typed text is
tokenised as a prompt is (decoding.prompt_ids).

A proposal is read as words the way keystrokes.simulate matches them (`proposal_words`): decoding stops once the
text holds more than `max_words` words (the last of them then complete), at EOS, or after `budget` tokens. Both
ways give the suggestions that decoding the typed text from scratch gives (tests/generation/test_suggest.py).

Why by hand: `model.generate` decodes one prefix per row. A note's boundaries are prefixes of one text, so
`propose_all` reads that text once and decodes every boundary's continuation in one sequence with a tree-shaped
4D mask: 48 boundaries cost one forward of the note plus ~10 steps of 48 tokens, not 48 forwards of their prefixes
(a cache repeated per boundary, tried first, spent most of its time copying 48 copies of the note's keys). The app's typist extends one text; `Suggester` crops its cache back to
the typed prefix (DynamicCache.crop) instead of re-reading it.
"""

from __future__ import annotations

import re
from typing import Any

from notelm.generation.decoding import prompt_ids


def proposal_words(last_typed: str, generated: str, max_words: int, ended: bool) -> list[str]:
    """The words a generated continuation proposes after text whose last word is `last_typed`: a continuation
    that does not start with whitespace changes that word, and the changed word is its first (it never matches the
    reference's next word); at most `max_words`; the last word dropped when decoding stopped inside it (not
    `ended` by EOS and no whitespace after it)."""
    words = generated.split() if generated[:1].isspace() else (last_typed + generated).split()
    if not ended and words and not generated[-1:].isspace() and len(words) <= max_words:
        words = words[:-1]
    return words[:max_words]


def suggestion_text(generated: str, max_words: int, ended: bool) -> str:
    """What the page offers to insert after the typed text: `generated` up to its `max_words`-th word, whitespace
    kept (a continuation of the last typed word stays glued to it), without a last word cut short by the budget."""
    pieces = re.findall(r"\s*\S+", generated)
    if not (ended or generated[-1:].isspace() or len(pieces) > max_words):
        pieces = pieces[:-1]
    return "".join(pieces[:max_words])


def _finished(tokenizer, ids: list[int], gap: str, max_words: int) -> bool:
    """Whether a row's decoding can stop: EOS, or more than `max_words` words after its gap."""
    return tokenizer.eos_token_id in ids or len(decode_raw(tokenizer, ids)[len(gap):].split()) > max_words


def decode_raw(tokenizer, ids: list[int]) -> str:
    """Token ids as text, special tokens dropped, whitespace kept (it separates words)."""
    return tokenizer.decode([i for i in ids if i != tokenizer.eos_token_id], skip_special_tokens=True)


def _words(tokenizer, last_typed: str, gap: str, ids: list[int], max_words: int) -> list[str]:
    text = decode_raw(tokenizer, ids)
    if not text.startswith(gap):  # the row had to rewrite the end of the typed text and did not
        return []
    return proposal_words(last_typed, text[len(gap):], max_words, tokenizer.eos_token_id in ids)


def boundaries(tokenizer, prompt: str, words: list[str]) -> tuple[list[int], list[int], list[str]]:
    """The token ids of the prompt followed by `words`, and per word boundary i (the prompt and words[:i] typed):
    how many leading tokens lie wholly in the typed text, and the typed characters after them (the `gap`: ''
    unless a token straddles the boundary)."""
    text = prompt + "".join(" " + w for w in words)
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, spans = enc["input_ids"], enc["offset_mapping"]
    while len(ids) > 1 and spans[-1] == (0, 0):  # a trailing special token (an end marker) is not typed text
        ids, spans = ids[:-1], spans[:-1]
    cuts, gaps, end = [], [], len(prompt)
    for word in words:
        cut = sum(1 for s, e in spans if e <= end)
        cuts.append(cut)
        gaps.append(text[spans[cut][0]:end] if cut < len(spans) and spans[cut][0] < end else "")
        end += 1 + len(word)
    return ids, cuts, gaps


def propose_all(model, tokenizer, prompt: str, words: list[str], max_words: int, budget: int) -> list[list[str]]:
    """The model's proposal at every word boundary of a note typed as `words` after `prompt`: [proposal after
    words[:i] for i in range(len(words))], each at most `max_words` words, greedy, at most `budget` new tokens.

    The note is read once; its boundaries' continuations then grow side by side as one sequence (a tree): at each
    step the newest token of every row still writing is appended after the note, at its own position (boundary +
    its tokens so far), seeing the note's tokens before its boundary and its own earlier tokens only (a 4D mask).
    One copy of the note's keys and values serves every row, and a row that has its words stops costing."""
    import torch

    if not words:
        return []
    ids, cuts, gaps = boundaries(tokenizer, prompt, words)
    width, device = max(cuts), model.device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids[:width]], device=device), use_cache=True)  # 1 × width × V
        written = [[t] for t in out.logits[0, [c - 1 for c in cuts]].argmax(-1).tolist()]  # c − 1 predicts token c
        cache, length, lowest = out.past_key_values, width, torch.finfo(out.logits.dtype).min
        own: list[list[int]] = [[] for _ in cuts]  # where each row's fed tokens sit in the cache
        lasts = [(prompt.split() or [""])[-1]] + words[:-1]  # the last typed word at each boundary
        for _ in range(budget - 1):
            live = [r for r, (w, g) in enumerate(zip(written, gaps)) if not _finished(tokenizer, w, g, max_words)]
            if not live:
                break
            seen = torch.zeros(len(live), length + len(live), dtype=torch.bool)  # live × keys: who sees what
            for k, r in enumerate(live):
                own[r].append(length + k)
                seen[k, : cuts[r]] = True
                seen[k, own[r]] = True
            mask = torch.zeros(seen.shape, dtype=out.logits.dtype).masked_fill(~seen, lowest).to(device)
            out = model(input_ids=torch.tensor([[written[r][-1] for r in live]], device=device), past_key_values=cache,
                        attention_mask=mask[None, None],
                        position_ids=torch.tensor([[cuts[r] + len(own[r]) - 1 for r in live]], device=device),
                        cache_position=torch.arange(length, length + len(live), device=device),
                        use_cache=True)  # 1 × live × V: each live row's next token
            length += len(live)
            for r, token in zip(live, out.logits[0].argmax(-1).tolist()):
                written[r].append(token)
    return [_words(tokenizer, lt, g, w, max_words) for lt, g, w in zip(lasts, gaps, written)]


def _crop_to(cache, length: int) -> bool:
    """Cut `cache` back to its first `length` tokens (transformers 5 takes minus the tokens to remove); False when
    it cannot (a sliding-window layer past its window keeps no older states): the caller re-reads the text."""
    remove = cache.get_seq_length() - length
    try:
        if remove > 0:
            cache.crop(-remove)
    except ValueError:
        return False
    return True


class Suggester:
    """One typist's suggestions: `propose(text)` keeps the KV cache of the typed text's tokens, re-reads only the
    tokens after the part it shares with the previous text, decodes on, then crops the cache back."""

    def __init__(self, model, tokenizer, max_words: int, budget: int):
        self.model, self.tokenizer, self.max_words, self.budget = model, tokenizer, max_words, budget
        self.ids: list[int] = []
        self.cache: Any = None
        self.logits: Any = None  # V: the next-token scores after self.ids
        self.work = (0, 0)  # (tokens read, tokens decoded) by the last proposal: what a benchmark charges it

    def _read(self, ids: list[int]) -> None:
        """Bring the cache and logits to `ids`, re-reading only what differs from the cached tokens."""
        import torch

        shared = next((i for i, (a, b) in enumerate(zip(self.ids, ids)) if a != b), min(len(self.ids), len(ids)))
        self.work = (0, 0)
        if shared == len(ids) == len(self.ids) and self.logits is not None:
            return
        shared = min(shared, len(ids) - 1)  # at least one token is read, for its logits
        if self.cache is None or shared == 0 or not _crop_to(self.cache, shared):
            self.cache, shared = None, 0
        out = self.model(input_ids=torch.tensor([ids[shared:]], device=self.model.device), past_key_values=self.cache,
                         use_cache=True)
        self.cache, self.logits, self.ids, self.work = out.past_key_values, out.logits[0, -1], ids, (len(ids) - shared, 0)

    def propose_text(self, text: str) -> tuple[str, bool]:
        """(the greedy continuation of `text` as decoded, whether EOS ended it), the cache left at `text`."""
        import torch

        with torch.inference_mode():
            self._read(prompt_ids(self.tokenizer, text))
            written, token = [], int(self.logits.argmax())
            while True:
                written.append(token)
                if len(written) >= self.budget or _finished(self.tokenizer, written, "", self.max_words):
                    break
                out = self.model(input_ids=torch.tensor([[token]], device=self.model.device),
                                 past_key_values=self.cache, use_cache=True)
                token = int(out.logits[0, -1].argmax())
            if not _crop_to(self.cache, len(self.ids)):
                self.cache, self.ids, self.logits = None, [], None
            self.work = (self.work[0], len(written))
        return decode_raw(self.tokenizer, written), self.tokenizer.eos_token_id in written

    def propose(self, text: str) -> list[str]:
        """The proposal after `text` as words (proposal_words)."""
        generated, ended = self.propose_text(text)
        return proposal_words((text.split() or [""])[-1], generated, self.max_words, ended)
