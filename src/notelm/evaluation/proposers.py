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

from notelm.config.names import HISTORY_MARK, NOTE_MARK, note_part
from notelm.data.history import earlier
from notelm.evaluation.baselines import align, chart_text
from notelm.generation.drafts import Drafter, prompt_lookup, words_drafter


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


def drafters(chart: list[str], ngram: NGram | None, k: int) -> list[Drafter]:
    """The drafts a Suggester verifies, in the order it tries them: the n-gram table's chain, the chart's aligned
    span (`chart`: the patient's earlier note as words; none without one), then prompt lookup — each `k` words;
    the table and the chart read the note without its history (names.note_part), prompt lookup the whole text.
    The order came from a one-off comparison of the drafters one at a time in benchmarks/suggest.py's setting (three
    test notes; not a committed result): a rejected draft still costs the positions it adds to a forward, so the
    drafter right most often goes first."""
    out = [words_drafter(lambda w: ngram.propose(w, k), note_part)] if ngram is not None else []
    return [*out, *([chart_drafter(chart, k)] if chart else []), prompt_lookup(k)]


def chart_drafter(chart: list[str], k: int) -> Drafter:
    """A Drafter of the `k` words that follow, in `chart` (the patient's earlier note as words), the place the text's
    note (names.note_part: without its history) has reached (the `aligned_copy` rule)."""
    copy = ChartCopy(chart, [])
    return words_drafter(lambda words: copy.propose(words, k), note_part)


def history_drafter(k: int) -> Drafter:
    """A Drafter copying the `k` words that follow, in the history a text carries (the earlier note between
    HISTORY_MARK and NOTE_MARK, as the app and data.history write it), the place its note has reached; '' for a
    text without history."""

    def draft(text: str) -> str:
        if HISTORY_MARK not in text or NOTE_MARK not in text:
            return ""
        chart = text.split(HISTORY_MARK, 1)[1].rsplit(NOTE_MARK, 1)[0].split()
        return " ".join(ChartCopy(chart, []).propose(note_part(text).split(), k))

    return draft
