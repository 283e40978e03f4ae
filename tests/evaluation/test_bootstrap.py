"""evaluation/bootstrap.py: bits per byte and the patient-clustered paired bootstrap with its verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.evaluation.bootstrap import (
    Resampling,
    bits_per_byte,
    interval,
    normal_interval,
    replicates,
    target_bytes,
    verdict,
)


def test_bits_per_byte_on_hand_computed_examples():
    # 8 bits of surprise over 4 bytes: 2 bits per byte; ln 2 nats is one bit
    assert bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)
    assert bits_per_byte(math.log(2), 1) == pytest.approx(1.0)
    assert target_bytes("abc") == 4  # the separating space is charged too
    assert target_bytes("é°") == 1 + 2 + 2  # UTF-8 bytes, not characters


def test_a_dominant_patient_widens_the_clustered_interval():
    """One patient with most of the notes and a shared offset: notes are not independent, and resampling
    patients says so with a wider interval than resampling notes."""
    rng = np.random.default_rng(0)
    patients = [0] * 40 + list(range(1, 11)) * 2
    offsets = rng.normal(0, 0.15, 11)
    values = np.array([0.5 + offsets[p] + rng.normal(0, 0.02) for p in patients])
    clustered = interval(values.mean(), replicates(values, Resampling.by(patients), 4000, 0)[:, 0])
    notes = interval(values.mean(), replicates(values, Resampling.by(range(len(values)), "note"), 4000, 0)[:, 0])
    assert clustered[1] - clustered[0] > 1.5 * (notes[1] - notes[0])
    normal = normal_interval(values)
    assert normal[1] - normal[0] == pytest.approx(notes[1] - notes[0], rel=0.2)


def test_replicates_are_paired_across_columns_and_seeded():
    rng = np.random.default_rng(1)
    patients = np.repeat(np.arange(15), 4)
    a = rng.random(60)
    b = a + 0.05  # better on every note by the same amount
    reps = replicates(np.stack([a, b], 1), Resampling.by(patients), 2000, 3)
    assert np.allclose(reps[:, 1] - reps[:, 0], 0.05)  # the same draws for both: the difference never moves
    assert np.array_equal(reps, replicates(np.stack([a, b], 1), Resampling.by(patients), 2000, 3))
    assert not np.array_equal(reps, replicates(np.stack([a, b], 1), Resampling.by(patients), 2000, 4))


def test_ratio_replicates_weight_by_the_denominator():
    values, weights = np.array([2.0, 9.0]), np.array([1.0, 3.0])  # 11 / 4 over both
    reps = replicates(values, Resampling.by([0, 0]), 50, 0, weights)
    assert np.allclose(reps, 11 / 4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_every_interval_contains_its_point(values, n_patients, seed):
    values = np.array(values)
    patients = [i % n_patients for i in range(len(values))]
    low, high = interval(values.mean(), replicates(values, Resampling.by(patients), 200, seed)[:, 0])
    assert low <= values.mean() <= high


def test_verdicts_come_from_the_interval():
    assert verdict(0.01, 0.2) == "better"
    assert verdict(-0.3, -0.01) == "worse"
    assert verdict(-0.01, 0.2) == "not distinguishable"


def test_verdicts_know_the_metrics_direction():
    from notelm.config.names import direction

    assert verdict(-2.09, -1.94, direction("bits_per_byte")) == "better"  # lower bits per byte: better
    assert verdict(0.05, 0.2, direction("invented_fact_rate")) == "worse"  # more invented facts: worse
    assert verdict(0.05, 0.2, direction("rougeL")) == "better"
    assert verdict(0.05, 0.2, direction("carried_fact_rate")) == "higher"  # no better side
    assert verdict(-0.1, 0.2, direction("fact_error_rate")) == "not distinguishable"


def test_an_undefined_ratio_in_some_resamples_leaves_the_interval_defined():
    reps = np.array([0.1, np.nan, 0.3, 0.2, np.nan])
    low, high = interval(0.2, reps)
    assert 0.1 <= low <= high <= 0.3
