"""The chart-aware suggestion system: at every word boundary the fine-tuned model's own proposal, the chart's
aligned span and the n-gram table's chain are candidates; the model scores each (the probability that the note
goes on with its first j words, notelm.generation.suggest.candidate_probabilities) and the rule shows the one
that saves the most keystrokes in expectation, or nothing when even that one is expected to save fewer than a
threshold. It is not lossless (it may show words the model would not write), so it is a system of its own,
scored beside the models and the proposers (the suggest stage).

The rule. With p_j the model's probability that the next j words are the candidate's first j, the nurse accepts
exactly j words with probability p_j − p_{j+1} and then saves Σ_{i ≤ j} (len(w_i) + 1) − 1 keystrokes (the words
and their spaces, less the Tab); summed, the expected saving is Σ_j p_j (len(w_j) + 1) − p_1.

The threshold is chosen on validation notes only (`tune`): the one of `THRESHOLDS` with the highest keystroke
savings there, the larger on a tie (fewer suggestions shown for the same savings). The oracle — at each boundary
the candidate with the most right words, boundary by boundary — shows how much better a choice among these
candidates can do; it is greedy per boundary, not the best path over a note, so it is no upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notelm.evaluation.keystrokes import Typing, matched, simulate, summary

THRESHOLDS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # expected keystrokes saved


@dataclass(frozen=True)
class Candidate:
    """One proposal at one boundary: where it came from, its words, and the model's p_j for j = 1..len(words)."""

    source: str
    words: list[str]
    probs: list[float]


def expected_saving(words: Sequence[str], probs: Sequence[float]) -> float:
    """Keystrokes a candidate saves in expectation under the model (the module's rule)."""
    return sum(p * (len(w) + 1) for w, p in zip(words, probs)) - (probs[0] if probs else 0.0)


def choose(candidates: Sequence[Candidate], threshold: float) -> Candidate | None:
    """The candidate with the highest expected saving (the first on a tie), or None below `threshold`."""
    best = max(candidates, key=lambda c: expected_saving(c.words, c.probs), default=None)
    return best if best is not None and expected_saving(best.words, best.probs) >= threshold else None


def oracle(candidates: Sequence[Candidate], reference: list[str], at: int) -> Candidate | None:
    """The candidate whose words match most of `reference[at:]` (the first on a tie; None when none matches)."""
    best = max(candidates, key=lambda c: matched(c.words, reference, at), default=None)
    return best if best is not None and matched(best.words, reference, at) else None


Note = tuple[list[str], list[list[Candidate]]]  # a note's reference words, and its candidates at every boundary


def typed(note: Note, pick, max_words: int) -> tuple[Typing, list[str]]:
    """The nurse's counts for one note whose suggestion at boundary i is `pick(candidates[i], i)`, and the
    source of each suggestion shown ('' where none is)."""
    words, candidates = note
    picked = [pick(c, i) for i, c in enumerate(candidates)]
    visited: list[int] = []
    typing = simulate(words, lambda i: picked[i].words if picked[i] else [], max_words, visited)
    return typing, [picked[i].source if picked[i] else "" for i in visited]


def tune(notes: Sequence[Note], max_words: int) -> tuple[float, dict[str, float]]:
    """(the threshold with the highest keystroke savings over `notes` — validation notes, never test —, the
    savings of every threshold tried)."""
    curve = {t: summary([typed(n, lambda c, i, t=t: choose(c, t), max_words)[0] for n in notes])["keystroke_savings"]
             for t in THRESHOLDS}
    best = max(THRESHOLDS, key=lambda t: (curve[t], t))
    return best, {f"{t:g}": v for t, v in curve.items()}
