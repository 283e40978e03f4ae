"""How sure we are: the patient-clustered paired bootstrap, and per-byte likelihood.

Notes of one patient are not independent (they copy each other forward), so every interval and every
difference resamples *patients* with all their notes (`Resampling.by(subject_ids)`); a difference is paired:
both systems are scored on the same resampled patients. The point estimate is the mean over notes; the interval
is the percentile interval of the resampled means, widened to hold the point. Used by evaluate and compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
MIN_CLUSTERS = 20  # fewer resampled patients than this: an interval says little about new patients
_REPLICATES_PER_BLOCK = 1000  # resamples drawn at once: bounds the (block × clusters) count matrix


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Negative log-likelihood in nats over `n_bytes` bytes of UTF-8 text, as bits per byte: comparable across
    tokenizers, since every model is charged for the same bytes."""
    return nll_nats / math.log(2) / n_bytes


def target_bytes(target: str) -> int:
    """The bytes a model is charged for when it continues a prompt with `target`: the separating space and
    the target, in UTF-8 (every tokenizer predicts the space with the target's first token)."""
    return len((" " + target).encode("utf-8"))


@dataclass(frozen=True)
class Resampling:
    """Which examples are resampled together: one cluster index (0..C-1) per example."""

    clusters: np.ndarray
    unit: str

    @classmethod
    def by(cls, keys: Sequence[Any], unit: str = "patient") -> Resampling:
        """Examples with equal keys (e.g. subject_id) form a cluster."""
        _, index = np.unique(np.asarray([str(k) for k in keys]), return_inverse=True)
        return cls(index.astype(np.int64), unit)

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1 if len(self.clusters) else 0


def replicates(values: np.ndarray, resampling: Resampling, samples: int, seed: int,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates of the mean of each column of `values` (n × K): `samples` × K.

    Each replicate draws clusters with replacement (counts from one multinomial per replicate) and takes
    sum(values) / sum(weights) over their examples: the plain mean with the default weights (1 per example),
    a ratio of sums with others (e.g. NLL over bytes). Every column shares the same draws, so differences
    between columns are paired.
    """
    values = np.asarray(values, dtype=float).reshape(len(resampling.clusters), -1)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float).reshape(values.shape)
    n_clusters = resampling.n_clusters
    sums = np.zeros((n_clusters, values.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, resampling.clusters, values)
    np.add.at(counts, resampling.clusters, weights)
    rng = np.random.default_rng(seed)
    out = np.empty((samples, values.shape[1]))
    for start in range(0, samples, _REPLICATES_PER_BLOCK):
        draws = rng.multinomial(n_clusters, np.full(n_clusters, 1 / n_clusters), size=min(_REPLICATES_PER_BLOCK,
                                                                                           samples - start))
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0: a ratio undefined in that resample (NaN)
            out[start:start + len(draws)] = (draws @ sums) / (draws @ counts)
    return out


def interval(point: float, reps: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of `reps`, widened to hold `point` (degenerate resamples, float noise).
    Undefined replicates (NaN: a ratio whose resampled denominator is 0) are left out."""
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.nanpercentile(reps, [100 * alpha, 100 * (1 - alpha)])
    return float(min(low, point)), float(max(high, point))


def normal_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % interval of a mean treating every example as independent (the note-level view, normal
    approximation): what an interval looks like when the patients' shared notes are ignored."""
    values = np.asarray(values, dtype=float)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean() - half), float(values.mean() + half)


def verdict(low: float, high: float, direction: str = "higher") -> str:
    """What a paired difference's interval says, given which way the metric is better (`higher`, `lower`,
    `neutral`): `better` or `worse` when the interval lies above or below 0 (`higher` / `lower` for a neutral
    metric), else `not distinguishable`."""
    if direction == "neutral":
        above, below = "higher", "lower"
    else:
        above, below = ("better", "worse") if direction == "higher" else ("worse", "better")
    return above if low > 0 else below if high < 0 else "not distinguishable"
