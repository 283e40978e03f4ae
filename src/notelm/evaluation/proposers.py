"""Model-free word proposers for the simulated nurse (the suggest stage): what a suggestion tool could offer
without a language model.

- `ChartCopy`: the words that follow, in the patient's most recent earlier note of the test split, the place
  where the typed text ends — `baselines.align` (the `aligned_copy` baseline's rule) redone at every word.
  No earlier note: no suggestion.
- `NGram`: the most frequent next word after the typed text's last `order − 1` words in the train notes (backing
  off to fewer), chained to `max_words` words. Ties go to the continuation seen first.

Each `propose(typed_words, k)` returns at most k words, matched exactly (case and punctuation kept) as
keystrokes.simulate does.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from notelm.config.names import note_part
from notelm.data.history import earlier
from notelm.evaluation.baselines import align, chart_text


class NGram:
    """Next-word counts of the train notes (prompt and target as one text) for contexts of 1..order−1 words."""

    def __init__(self, texts: list[str], order: int = 3):
        self.order = order
        self.counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for text in texts:
            words = text.split()
            for i, word in enumerate(words):
                for n in range(1, order):
                    if i - n >= 0:
                        self.counts[tuple(words[i - n:i])][word] += 1

    def next_word(self, words: list[str]) -> str | None:
        """The most frequent next word after the longest context of `words`' last words seen in train."""
        for n in range(min(self.order - 1, len(words)), 0, -1):
            seen = self.counts.get(tuple(words[-n:]))
            if seen:
                return seen.most_common(1)[0][0]
        return None

    def propose(self, typed_words: list[str], k: int) -> list[str]:
        out: list[str] = []
        while len(out) < k and (word := self.next_word(typed_words + out)) is not None:
            out.append(word)
        return out


class ChartCopy:
    """The aligned copy of one test row's chart (its patient's most recent earlier note), at every word."""

    def __init__(self, source: list[str], start: list[str]):
        self.source, self.start = source, start  # the earlier note's words; the scored prompt's own words

    def propose(self, typed_words: list[str], k: int) -> list[str]:
        """`typed_words` are the reference words typed after the prompt."""
        if not self.source:
            return []
        at, _ = align(self.start + typed_words, self.source)
        return self.source[at:at + k]


def chart_copies(rows: list[dict], split_rows: list[dict]) -> list[ChartCopy]:
    """A ChartCopy per row of `rows`, each reading its patient's most recent earlier note of `split_rows` (the
    whole test split, context notes included): the same note `aligned_copy` reads."""
    previous = dict(zip((r["note_id"] for r in split_rows), earlier(split_rows, k=1)))
    return [ChartCopy(chart_text(split_rows[p[0]]).split() if (p := previous.get(r["note_id"])) else [],
                      note_part(r["prompt"]).split()) for r in rows]
