"""Word suggestions from a causal language model: its next words after the typed text, greedily. Used by the
suggest stage (`propose_all`: every word boundary of a note at once), the app and benchmarks/suggest.py
(`Suggester`: one typist, the KV cache of what was typed kept from one suggestion to the next, drafts verified).
The typed text is tokenised as a prompt is (decoding.prompt_ids). `candidate_probabilities` scores given
proposals under the model, every boundary's at once (the chart-aware system, notelm.evaluation.choose).

A proposal is read as words the way keystrokes.simulate matches them (`proposal_words`): decoding stops once the
text holds more than `max_words` words (the last of them then complete), at EOS, or after `budget` tokens. Both
ways give the suggestions that decoding the typed text from scratch gives (tests/generation/test_suggest.py).

Why by hand: `model.generate` decodes one prefix per row. A note's boundaries are prefixes of one text, so
`propose_all` reads that text once and decodes every boundary's continuation in one sequence with a tree-shaped
4D mask: 48 boundaries cost one forward of the note plus ~10 steps of 48 tokens, not 48 forwards of their prefixes
(a cache repeated per boundary, tried first, spent most of its time copying 48 copies of the note's keys); a
boundary whose greedy tokens are the note's own next tokens takes them from that one forward. The app's typist
extends one text; `Suggester` crops its cache back to the typed prefix (DynamicCache.crop) instead of re-reading
it, and after a verified draft. transformers' assisted decoding (prompt_lookup_num_tokens) drafts from the prompt
only and restarts from the whole text at every call; the Suggester keeps its cache across keystrokes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notelm.generation.decoding import is_wordpiece, prompt_ids
from notelm.generation.drafts import MAX_OFFER, Drafter, draft_tokens, next_offer


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


def _first_finished(tokenizer, ids: list[int], gap: str, max_words: int, budget: int) -> list[int]:
    """`ids` cut where plain decoding would have stopped writing them: at the first prefix that is finished, or at
    `budget` tokens."""
    for n in range(1, min(len(ids), budget) + 1):
        if _finished(tokenizer, ids[:n], gap, max_words):
            return ids[:n]
    return ids[:budget]


def decode_raw(tokenizer, ids: list[int]) -> str:
    """Token ids as text, special tokens dropped, whitespace kept (it separates words)."""
    return tokenizer.decode([i for i in ids if i != tokenizer.eos_token_id], skip_special_tokens=True)


def _words(tokenizer, last_typed: str, gap: str, ids: list[int], max_words: int) -> list[str]:
    text = decode_raw(tokenizer, ids)
    if not text.startswith(gap):  # the row had to rewrite the end of the typed text and did not
        return []
    return proposal_words(last_typed, text[len(gap):], max_words, tokenizer.eos_token_id in ids)


def _encode(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """`text`'s token ids and their character spans, without a trailing special token (an end marker is not typed
    text)."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, spans = enc["input_ids"], enc["offset_mapping"]
    while len(ids) > 1 and spans[-1] == (0, 0):
        ids, spans = ids[:-1], spans[:-1]
    return ids, spans


def boundaries(tokenizer, prompt: str, words: list[str]) -> tuple[list[int], list[int], list[str]]:
    """The token ids of the prompt followed by `words`, and per word boundary i (the prompt and words[:i] typed):
    how many leading tokens lie wholly in the typed text, and the typed characters after them (the `gap`: ''
    unless a token straddles the boundary)."""
    text = prompt + "".join(" " + w for w in words)
    ids, spans = _encode(tokenizer, text)
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
    device = model.device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids], device=device), use_cache=True)  # 1 × len(ids) × V
        choice = out.logits[0].argmax(-1).tolist()  # choice[t]: the greedy token after ids[:t + 1]
        # Each row follows the note while the model's choice is the note's next token (those tokens are cached
        # already, read with exactly the row's prefix before them), then takes its own differing choice.
        own = [list(range(c, next((t for t in range(c, len(ids)) if choice[t - 1] != ids[t]), len(ids))))
               for c in cuts]  # where each row's tokens sit in the cache
        written = [_first_finished(tokenizer, ids[c:c + len(o)] + [choice[c + len(o) - 1]], g, max_words, budget)
                   for c, o, g in zip(cuts, own, gaps)]
        own = [o[: len(w) - 1] for o, w in zip(own, written)]
        cache, length, lowest = out.past_key_values, len(ids), torch.finfo(out.logits.dtype).min
        lasts = [(prompt.split() or [""])[-1]] + words[:-1]  # the last typed word at each boundary
        while True:
            live = [r for r, (w, g) in enumerate(zip(written, gaps))
                    if len(w) < budget and not _finished(tokenizer, w, g, max_words)]
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


def crop_cache(cache, length: int) -> bool:
    """Cut `cache` back to its first `length` tokens (transformers 5 takes minus the tokens to remove); False when
    it cannot (a sliding-window layer past its window keeps no older states): the caller re-reads the text."""
    remove = cache.get_seq_length() - length
    try:
        if remove > 0:
            cache.crop(-remove)
    except ValueError:
        return False
    return True


@dataclass
class Work:
    """What one proposal cost: forwards run, tokens fed through the model (typed tokens re-read, the model's own
    tokens, draft tokens), draft tokens offered and accepted, tokens written."""

    forwards: int = 0
    fed: int = 0
    drafted: int = 0
    accepted: int = 0
    written: int = 0


class Suggester:
    """One typist's suggestions: `propose(text)` keeps the KV cache of the typed text's tokens, re-reads only the
    tokens after the part it shares with the previous text, decodes on, then crops the cache back.

    Decoding verifies drafts (speculative decoding with model-free drafters: Leviathan et al. 2023; prompt lookup;
    LLMA, Yang et al. 2023): each forward feeds the tokens not yet cached and, after them, the first draft that
    `drafters` (notelm.generation.drafts) offer for the text so far — the rest of the previous suggestion first,
    when the text still follows it (`drafters=()`: that one only; None: no drafts, plain greedy). The logits at
    every fed position are the model's greedy choices there, so the longest draft prefix equal to them is kept,
    with the model's own token after it, and the cache is cropped back past the rejected rest. The words are exactly those of plain greedy decoding; a draft rejected at its
    first token costs no forward more (tests/generation/test_suggest.py)."""

    def __init__(self, model, tokenizer, max_words: int, budget: int, drafters: Sequence[Drafter] | None = None):
        self.model, self.tokenizer, self.max_words, self.budget = model, tokenizer, max_words, budget
        self.drafters = None if drafters is None else list(drafters)  # None: plain greedy, no draft at all
        self.ids: list[int] = []  # the tokens in the cache between proposals: the last typed text's
        self.cache: Any = None
        self.cached = 0  # how many leading tokens the cache holds
        self.previous = ""  # the last proposal's text and continuation: a draft while the typing follows it
        self.offer = MAX_OFFER  # draft tokens offered at once: halved after a rejected first one, doubled after all
        self.work = Work()

    def _crop(self, length: int) -> None:
        """Keep the cache's first `length` tokens (all of it dropped when it cannot be cut)."""
        if self.cache is not None and not crop_cache(self.cache, length):
            self.cache, length = None, 0
        self.cached = length if self.cache is not None else 0

    def _draft(self, text: str, confirmed: list[int]) -> list[int]:
        """The first draft whose tokens follow `confirmed` (the tokens of `text`), as the tokens after them."""
        if self.drafters is None:
            return []
        follow = self.previous[len(text):] if self.previous.startswith(text) else ""
        # the previous suggestion goes on from the text as it is (even inside a word); a drafter's words are words
        for n, words in enumerate((follow, *(d(text) for d in self.drafters))):
            if tokens := draft_tokens(self.tokenizer, text, words, confirmed, glue=n > 0):
                return tokens
        return []

    def _verify(self, tail: list[int], draft: list[int]) -> list[int]:
        """Feed `tail` (confirmed tokens not yet cached) and `draft`; return the kept draft tokens and the model's
        next token after them, the cache cropped to the confirmed tokens before that last one."""
        import torch

        feed = tail + draft
        out = self.model(input_ids=torch.tensor([feed], device=self.model.device), past_key_values=self.cache,
                         use_cache=True, logits_to_keep=len(draft) + 1)  # 1 × (len(draft) + 1) × V
        self.cache = out.past_key_values
        greedy = out.logits[0].argmax(-1).tolist()  # the choice after the tail and each draft token
        kept = next((i for i, (d, g) in enumerate(zip(draft, greedy)) if d != g), len(draft))
        self.work.forwards, self.work.fed = self.work.forwards + 1, self.work.fed + len(feed)
        self.work.drafted, self.work.accepted = self.work.drafted + len(draft), self.work.accepted + kept
        self._crop(self.cached + len(tail) + kept)
        return greedy[: kept + 1]

    def propose_text(self, text: str) -> tuple[str, bool]:
        """(the greedy continuation of `text` as decoded, whether EOS ended it), the cache left at `text`."""
        import torch

        ids = prompt_ids(self.tokenizer, text)
        shared = next((i for i, (a, b) in enumerate(zip(self.ids, ids)) if a != b), min(len(self.ids), len(ids)))
        self._crop(min(shared, len(ids) - 1, self.cached))  # at least one token is read, for its logits
        self.work, written, done, self.offer = Work(), [], False, MAX_OFFER
        with torch.inference_mode():
            while not done:
                confirmed = ids + written
                room = min(self.offer, self.budget - len(written) - 1)  # kept beside the model's own token
                draft = self._draft(text + decode_raw(self.tokenizer, written), confirmed)[:room] if room else []
                new = self._verify(confirmed[self.cached:], draft)
                self.offer = next_offer(self.offer, len(draft), len(new) - 1)  # fewer while a drafter is wrong
                for token in new:
                    written.append(token)
                    done = len(written) >= self.budget or _finished(self.tokenizer, written, "", self.max_words)
                    if done:
                        break
            self._crop(min(len(ids), self.cached))
        self.ids = ids[: self.cached]
        self.work.written = len(written)
        generated = decode_raw(self.tokenizer, written)
        self.previous = text + generated
        return generated, self.tokenizer.eos_token_id in written

    def propose(self, text: str) -> list[str]:
        """The proposal after `text` as words (proposal_words)."""
        generated, ended = self.propose_text(text)
        return proposal_words((text.split() or [""])[-1], generated, self.max_words, ended)


def _word_starts(tokenizer) -> list[int]:
    """The ids of the tokens that begin a new word, and EOS: after a word, one of them says the word is complete.
    A token begins a word when its vocabulary form starts with a word-boundary marker (byte-level BPE's Ġ/Ċ,
    SentencePiece's ▁), or, for a WordPiece vocabulary, when it is no `##` continuation; else when it decodes
    alone to text starting with whitespace."""
    cached = getattr(tokenizer, "_notelm_word_starts", None)
    if cached is None:
        ids = list(range(len(tokenizer)))
        forms = tokenizer.convert_ids_to_tokens(ids)
        texts = tokenizer.batch_decode([[i] for i in ids])
        if is_wordpiece(tokenizer):
            cached = [i for i, f in zip(ids, forms) if f and not f.startswith("##")]
        else:
            cached = [i for i, f, t in zip(ids, forms, texts)
                      if (f or "")[:1] in ("Ġ", "Ċ", "ĉ", "▁") or t[:1].isspace()]
        cached.append(tokenizer.eos_token_id)
        tokenizer._notelm_word_starts = cached  # read the vocabulary once per tokenizer
    return cached


def _branches(tokenizer, prompt: str, words: list[str], ids: list[int], candidates: list[list[list[str]]]):
    """Per (boundary, candidate): (first token after the typed text, where the candidate's tokens leave the note's,
    its token ids, the end of each of its words as a token index, whether a word ends with its token)."""
    out = []
    for i, cands in enumerate(candidates):
        typed = prompt + "".join(" " + w for w in words[:i])
        for cand in cands:
            text = typed + "".join(" " + w for w in cand)
            full, spans = _encode(tokenizer, text)
            start = next((t for t, (_, e) in enumerate(spans) if e > len(typed)), len(full))
            lcp = next((t for t, (a, b) in enumerate(zip(full, ids)) if a != b), min(len(full), len(ids)))
            ends, end = [], len(typed)
            for w in cand:
                end += 1 + len(w)
                last = max(t for t, (s, _) in enumerate(spans) if s < end)
                ends.append((last, spans[last][1] == end))
            out.append((start, min(lcp, len(full)), full, ends))
    return out


def candidate_probabilities(model, tokenizer, prompt: str, words: list[str],
                            candidates: list[list[list[str]]]) -> list[list[list[float]]]:
    """For a note typed as `words` after `prompt` and, at each boundary i, some candidate proposals
    (candidates[i]: lists of words), the model's probability that its text after the typed text begins with a
    candidate's first j words as whole words: [boundary][candidate][j − 1].

    One forward reads the note and every candidate's tokens as a tree (a 4D mask: a candidate's tokens see the
    note's tokens it shares and its own earlier tokens). A candidate's tokens that equal the note's are read in
    the note. The probability of word j is that of every token up to its end, times the probability that the
    next token starts a word (or is EOS) when the word ends with a token; a token straddling the typed text's end
    counts whole (an approximation: the typed characters in it are taken as chosen)."""
    import torch

    ids = boundaries(tokenizer, prompt, words)[0]
    branches = _branches(tokenizer, prompt, words, ids, candidates)
    extra = [full[lcp:] for _, lcp, full, _ in branches]  # the tokens each candidate adds after the note's
    total = len(ids) + sum(map(len, extra))
    seen = torch.zeros(total, total, dtype=torch.bool)
    seen[: len(ids), : len(ids)] = torch.ones(len(ids), len(ids), dtype=torch.bool).tril()
    positions, where, at = list(range(len(ids))), [], len(ids)
    for (_, lcp, _, _), tokens in zip(branches, extra):
        for k in range(len(tokens)):
            seen[at + k, :lcp] = True
            seen[at + k, at:at + k + 1] = True
        positions += range(lcp, lcp + len(tokens))
        where.append(at)
        at += len(tokens)
    starts = torch.tensor(_word_starts(tokenizer))
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([ids + [t for x in extra for t in x]], device=model.device),
                       attention_mask=torch.zeros(total, total).masked_fill(~seen, torch.finfo(torch.float32).min)
                       .to(model.dtype)[None, None].to(model.device),
                       position_ids=torch.tensor([positions], device=model.device), logits_to_keep=total).logits[0]
        logits = hidden.float()  # total × V
        lse = torch.logsumexp(logits, -1)
        boundary = (torch.logsumexp(logits[:, starts], -1) - lse).tolist()  # log P(the next token starts a word)
    logits_at = lambda r, t: float(logits[r, t] - lse[r])
    out, b = [], 0
    for cands in candidates:
        out.append([])
        for _ in cands:
            start, lcp, full, ends = branches[b]

            def row(t: int, lcp=lcp, at=where[b]) -> int:  # the row whose logits predict token t + 1 of `full`
                return t if t < lcp else at + t - lcp

            logp = [logits_at(row(t - 1), full[t]) for t in range(start, len(full))]
            probs = []
            for last, whole in ends:
                value = sum(logp[: last - start + 1]) + (boundary[row(last)] if whole else 0.0)
                probs.append(math.exp(value) if last >= start else 1.0)
            out[-1].append(probs)
            b += 1
    return out
