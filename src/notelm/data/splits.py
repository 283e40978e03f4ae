"""Splitting notes by group into train/val/test, subsampling train, choosing the leaked test patients.

Pure functions of int arrays, shares and a seed. Each seeded draw has its own stream (`[seed, 0]` the
split, `[seed, 1]` the train subsample, `[seed, 2]` the leak), so the test set depends only on the set
of groups, `data.ratios` and `data.seed`, never on `data.fraction`.
"""

from __future__ import annotations

import numpy as np


def _split_counts(n: int, ratios: list[float]) -> tuple[int, int, int]:
    """Groups per split: val and test rounded from their shares (at least 1 each when positive and n ≥ 3)."""
    counts = []
    for share in ratios[1:]:
        k = int(n * share + 0.5)
        if share > 0 and k == 0 and n >= 3:
            k = 1
        counts.append(k)
    n_val, n_test = counts
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return n - n_val - n_test, n_val, n_test


def split_groups(keys: np.ndarray, ratios: list[float], seed: int) -> np.ndarray:
    """Assign each element's group to a split (0 train, 1 val, 2 test); returns one code per element.

    The distinct keys are sorted and shuffled by a permutation seeded with `seed`; the first
    share goes to train, the next to val, the rest to test. Every element of a group gets the
    same code, so no group is in two splits, and the result depends only on the set of keys,
    the ratios and the seed.
    """
    keys = np.asarray(keys, dtype=np.int64)
    uniq = np.unique(keys)
    n_train, n_val, _ = _split_counts(len(uniq), ratios)
    order = np.random.default_rng([seed, 0]).permutation(len(uniq))
    code = np.full(len(uniq), 2, dtype=np.int8)
    code[order[:n_train]] = 0
    code[order[n_train : n_train + n_val]] = 1
    return code[np.searchsorted(uniq, keys)]


def subsample_train(n_train: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of the train notes kept by `fraction` (share if ≤ 1, else a count), seeded.

    Positions come from one seeded permutation of 0..n_train-1, so a smaller fraction keeps
    a subset of what a larger one keeps.
    """
    if fraction > 1:
        k = min(int(fraction), n_train)
    elif fraction == 1 or n_train == 0:
        k = n_train
    else:
        k = max(1, int(n_train * fraction + 0.5))
    order = np.random.default_rng([seed, 1]).permutation(n_train)
    return np.sort(order[:k])


def group_keys(split_by: str, subject: np.ndarray, hadm: np.ndarray) -> np.ndarray:
    """One int64 group key per note: its subject, its admission (notes without one: a per-subject group), or itself."""
    if split_by == "subject":
        return subject
    if split_by == "admission":
        return np.where(hadm >= 0, hadm, -subject - 1)  # negative keys never collide with admission ids
    return np.arange(len(subject), dtype=np.int64)


def leaked_patients(test_subjects: np.ndarray, share: float, seed: int) -> set[int]:
    """The seeded share of test patients whose context notes `data.leak_test_patients` also puts into train."""
    uniq = np.unique(test_subjects)
    order = np.random.default_rng([seed, 2]).permutation(len(uniq))
    return set(uniq[order[: int(round(share * len(uniq)))]].tolist())
