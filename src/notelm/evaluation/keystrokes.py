"""A simulated nurse typing a note with word suggestions: keystrokes, savings, acceptance (the suggest stage).

The nurse types a scored test note's reference word by word after its prompt. At every word boundary the
system's proposal (its next words, at most `max_words`) is shown; the nurse accepts the longest prefix of it that
equals the reference's next words with one keystroke (Tab), and otherwise types the next word and the space after
it (len(word) + 1 keystrokes). Words match exactly, case and punctuation included. A reference's characters are
Σ (len(word) + 1): every word with its following space, which is what typing it costs without suggestions.

Per note (`Typing`) and over notes (ratios of sums, `RATIOS`): keystroke savings = 1 − keystrokes / characters
(Trnka and McCoy 2008; Spithourakis et al. 2016); its ceiling, every suggestion right and accepted whole
(⌈words / max_words⌉ keystrokes); accept rate = suggestions accepted at least in part / suggestions shown;
next-word accuracy = boundaries whose proposal starts with the right word / the note's word boundaries, every
boundary counted whether the nurse reached it or not (the boundaries reached depend on what each system had
accepted before, so a share of them would not compare across systems); mean accepted length = words accepted /
suggestions accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields


@dataclass(frozen=True)
class Typing:
    """The counts of one note typed with one system's suggestions."""

    characters: int
    keystrokes: int
    minimum: int  # keystrokes if every suggestion were right and accepted whole
    reached: int  # word boundaries the nurse reached (a suggestion could be shown at each)
    shown: int  # ... where the system proposed something
    accepted: int  # suggestions accepted at least in part
    accepted_words: int
    boundaries: int  # every word boundary of the note, reached or not
    first_right: int  # ... whose proposal starts with the reference's next word


# metric -> (numerator, denominator) over summed Typing counts; keystroke savings and its ceiling are 1 − ratio
RATIOS: dict[str, tuple[str, str]] = {
    "keystroke_savings": ("keystrokes", "characters"), "ceiling": ("minimum", "characters"),
    "accept_rate": ("accepted", "shown"), "next_word_accuracy": ("first_right", "boundaries"),
    "mean_accepted_words": ("accepted_words", "accepted"),
}
ONE_MINUS = frozenset({"keystroke_savings", "ceiling"})
COUNTS = tuple(f.name for f in fields(Typing))


def characters(words: list[str]) -> int:
    """What typing `words` costs without suggestions: each word and the space after it."""
    return sum(len(w) + 1 for w in words)


def matched(proposal: list[str], words: list[str], at: int) -> int:
    """How many of `proposal`'s first words equal `words[at:]`."""
    n = 0
    while n < len(proposal) and at + n < len(words) and proposal[n] == words[at + n]:
        n += 1
    return n


def simulate(words: list[str], propose: Callable[[int], list[str]], max_words: int,
             visited: list[int] | None = None) -> Typing:
    """Type `words` with `propose(i)` (the system's next words after the first i reference words) shown at every
    boundary the nurse reaches (appended to `visited`); returns the counts. `propose` is asked once at every
    boundary, reached or not (next-word accuracy reads them all)."""
    proposals = [propose(i)[:max_words] for i in range(len(words))]
    at = keystrokes = reached = shown = accepted = accepted_words = 0
    while at < len(words):
        proposal = proposals[at]
        reached += 1
        shown += bool(proposal)
        if visited is not None:
            visited.append(at)
        take = matched(proposal, words, at)
        if take:
            keystrokes, accepted, accepted_words, at = keystrokes + 1, accepted + 1, accepted_words + take, at + take
        else:
            keystrokes, at = keystrokes + len(words[at]) + 1, at + 1
    first_right = sum(1 for p, word in zip(proposals, words) if p and p[0] == word)
    return Typing(characters(words), keystrokes, math.ceil(len(words) / max_words), reached, shown, accepted,
                  accepted_words, len(words), first_right)


def rate(metric: str, numerator: float, denominator: float) -> float:
    """One of RATIOS from summed counts (NaN for a zero denominator)."""
    value = numerator / denominator if denominator else float("nan")
    return 1 - value if metric in ONE_MINUS else value


def summary(typings: list[Typing]) -> dict[str, float]:
    """Every metric of RATIOS over `typings` (ratios of sums)."""
    totals = dict(zip(COUNTS, map(sum, zip(*(astuple(t) for t in typings))))) if typings else dict.fromkeys(COUNTS, 0)
    return {m: rate(m, totals[num], totals[den]) for m, (num, den) in RATIOS.items()}
