"""Tests for the split logic (src/notelm/data/splits.py): groups never straddle splits, nested subsamples, the leak."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.data.splits import group_keys, leaked_patients, split_groups, subsample_train


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    shares=st.tuples(st.floats(0.05, 1), st.floats(0, 1), st.floats(0, 1)),
)
def test_split_groups_never_puts_a_group_in_two_splits(keys, seed, shares):
    ratios = [s / sum(shares) for s in shares]
    code = split_groups(np.array(keys), ratios, seed)
    assert len(code) == len(keys) and set(code.tolist()) <= {0, 1, 2}
    owner: dict[int, int] = {}
    for key, c in zip(keys, code.tolist()):
        assert owner.setdefault(key, c) == c
    assert np.array_equal(code, split_groups(np.array(keys), ratios, seed))


def test_small_shares_still_fill_val_and_test():
    code = split_groups(np.arange(3), [0.98, 0.01, 0.01], seed=0)
    assert sorted(code.tolist()) == [0, 1, 2]
    assert sorted(split_groups(np.arange(2), [0.5, 0.25, 0.25], seed=0).tolist()) == [0, 2]  # train is never emptied


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 500), seed=st.integers(0, 2**32 - 1), small=st.floats(0.01, 1), large=st.floats(0.01, 1))
def test_a_smaller_fraction_keeps_a_subset_of_a_larger_one(n, seed, small, large):
    small, large = sorted((small, large))
    kept_small, kept_large = subsample_train(n, small, seed), subsample_train(n, large, seed)
    assert set(kept_small.tolist()) <= set(kept_large.tolist())
    assert np.array_equal(kept_small, np.sort(kept_small)) and (n == 0 or len(kept_small) >= 1)
    assert len(subsample_train(n, 1.0, seed)) == n and len(subsample_train(n, 3.0, seed)) == min(3, n)


def test_group_keys_per_subject_admission_or_note():
    subject, hadm = np.array([1, 1, 2, 2]), np.array([10, -1, -1, 10])
    assert group_keys("subject", subject, hadm).tolist() == [1, 1, 2, 2]
    assert group_keys("admission", subject, hadm).tolist() == [10, -2, -3, 10]  # no admission: one group per patient
    assert group_keys("note", subject, hadm).tolist() == [0, 1, 2, 3]


def test_leaked_patients_are_a_seeded_share_of_the_test_patients():
    subjects = np.array([5, 5, 6, 7, 8, 8, 9])
    leaked = leaked_patients(subjects, 0.4, seed=3)
    assert len(leaked) == 2 and leaked <= {5, 6, 7, 8, 9} and leaked == leaked_patients(subjects, 0.4, seed=3)
    assert leaked_patients(subjects, 0.0, seed=3) == set() and leaked_patients(subjects, 1.0, seed=3) == {5, 6, 7, 8, 9}
