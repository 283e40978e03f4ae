"""Templating, measured: how much a system's continuations of *different* patients resemble each other.

A model that writes the same vital signs for every patient is rewarded by ROUGE and BERTScore whenever the ward's
notes look alike; the references' own cross-patient similarity is the bar such sameness should not exceed.
`cross_patient_similarity` is the mean ROUGE-L F1 over pairs of examples of different patients (every pair, or a
seeded sample of PAIRS); `repeated_ngrams` lists the word n-grams the most continuations share.
Used by evaluate (the numbers) and report (the n-grams, which are note text and so stay out of git).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

PAIRS = 2000  # most pairs scored per system: enough for a mean to ±0.01, cheap at any test-set size


def patient_pairs(patients: Sequence, seed: int, limit: int = PAIRS) -> list[tuple[int, int]]:
    """Index pairs (i < j) of examples of different patients: all of them, or a seeded sample of `limit`."""
    keys = [str(p) for p in patients]
    n = len(keys)
    if n * (n - 1) // 2 <= limit:
        return [(i, j) for i in range(n) for j in range(i + 1, n) if keys[i] != keys[j]]
    rng = np.random.default_rng([seed, 13])
    pairs: set[tuple[int, int]] = set()
    for _ in range(limit * 20):  # bounded: a test set of one patient has no pair
        i, j = sorted(int(x) for x in rng.integers(0, n, 2))
        if i != j and keys[i] != keys[j]:
            pairs.add((i, j))
            if len(pairs) == limit:
                break
    return sorted(pairs)


def cross_patient_similarity(texts: Sequence[str], pairs: list[tuple[int, int]]) -> float | None:
    """Mean ROUGE-L F1 between the texts of each pair (None without pairs)."""
    from notelm.evaluation.rouge import rouge_scores

    if not pairs:
        return None
    scores = rouge_scores([texts[i] for i, _ in pairs], [texts[j] for _, j in pairs], keys=("rougeL",))["rougeL"]
    return float(scores.mean())


def repeated_ngrams(texts: Sequence[str], n: int = 4, top: int = 5) -> list[tuple[str, int]]:
    """The `top` word n-grams found in the most texts, with how many texts hold each (ties: first seen first)."""
    counts: Counter[str] = Counter()
    for text in texts:
        words = text.split()
        grams = (" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        counts.update(dict.fromkeys(grams).keys())  # each once, in text order: a set's order changes with str hashing
    return [(gram, c) for gram, c in counts.most_common(top) if c > 1]
