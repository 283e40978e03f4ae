"""Patient-clustered intervals and paired differences over every system's per-example scores (the evaluate stage).

`Intervals` resamples test patients with all their notes, once for every column of every system, so that each
difference is paired: both systems are scored on the same resampled patients (src/notelm/evaluation/bootstrap.py). Its
columns are the per-example scores and, for the models, the likelihood metrics as (numerator, denominator)
pairs, so bits per byte is a ratio of sums and perplexities are exp of log-means; the fact rates are ratios of
sums too (facts of some classes over facts written, names.FACT_RATES), present where a system wrote any fact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import (
    BEST_BASELINE,
    EVAL_CLAIMANTS,
    FACT_METRICS,
    FACT_RATES,
    FACTS,
    HEADLINE,
    LIKELIHOOD,
    VARIANTS,
    difference_key,
    direction,
)
from notelm.evaluation import bootstrap
from notelm.evaluation.examples import Examples


def likelihood(rows: list[dict], refs: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{metric: (numerator, denominator) per example} of the likelihood metrics, or None when the generations
    carry no target NLL: bits per byte (NLL / ln 2 over bytes), per-word and per-token perplexity (their logs)."""
    try:
        nll = np.array([float(r["target_nll"]) for r in rows])
        tokens = np.array([float(r["target_tokens"]) for r in rows])
    except (KeyError, TypeError, ValueError):
        return None
    if tokens.sum() <= 0 or not np.all(np.isfinite(nll)):
        return None
    bits, words, tokens_key = LIKELIHOOD
    return {bits: (nll / math.log(2), np.array([bootstrap.target_bytes(t) for t in refs], float)),
            words: (nll, np.array([len(t.split()) for t in refs], float)),
            tokens_key: (nll, tokens)}


class Intervals:
    """Every per-example column of every system, resampled together by patient (so differences are paired)."""

    def __init__(self, ex: Examples, scores: dict[str, dict[str, np.ndarray]], cfg: EvaluateParams) -> None:
        self.columns: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for system, by_metric in scores.items():
            for metric, values in by_metric.items():
                self.columns[system, metric] = (values, np.ones_like(values))
        for v, rows in ex.generations.items():
            for metric, pair in (likelihood(rows, ex.refs) or {}).items():
                self.columns[v, metric] = pair
        for system, by_metric in scores.items():
            for metric, pair in fact_rates(by_metric).items():
                self.columns[system, metric] = pair
        self.resampling = bootstrap.Resampling.by([r["subject_id"] for r in ex.rows])
        keys = list(self.columns)
        reps = bootstrap.replicates(np.stack([self.columns[k][0] for k in keys], 1), self.resampling,
                                  cfg.bootstrap_samples, cfg.seed, np.stack([self.columns[k][1] for k in keys], 1))
        self.reps = {k: reps[:, i] for i, k in enumerate(keys)}

    def has(self, system: str, metric: str) -> bool:
        return (system, metric) in self.columns

    def point(self, system: str, metric: str) -> float:
        num, den = self.columns[system, metric]
        return float(num.sum() / den.sum())

    def block(self, system: str) -> dict[str, float]:
        """metric, metric_ci_low, metric_ci_high of every metric of `system` (perplexities as exp of log-means)."""
        out = {}
        for (s, metric), reps in self.reps.items():
            if s != system:
                continue
            point, (low, high) = self.point(s, metric), bootstrap.interval(self.point(s, metric), reps)
            f = math.exp if metric.endswith("perplexity") else float
            out.update({metric: f(point), f"{metric}_ci_low": f(low), f"{metric}_ci_high": f(high)})
        return out

    def difference(self, a: str, b: str, metric: str) -> dict[str, Any]:
        """The paired difference a − b of `metric` over the same resampled patients, with its verdict."""
        point = self.point(a, metric) - self.point(b, metric)
        low, high = bootstrap.interval(point, self.reps[a, metric] - self.reps[b, metric])
        return {metric: point, f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                f"{metric}_verdict": bootstrap.verdict(low, high, direction(metric))}

    def note_level(self, system: str) -> dict[str, float]:
        """Intervals that treat every note as independent (normal approximation), for comparison only."""
        out = {}
        for (s, metric), (num, den) in self.columns.items():
            if s == system and np.all(den == 1):  # plain means only: not the ratios of sums
                out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = bootstrap.normal_interval(num / den)
        return out


def fact_rates(by_metric: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{rate: (facts of its classes, facts written) per example} of names.FACT_RATES, from a system's per-example
    fact counts; {} when it has none or wrote no fact at all (a rate of nothing is undefined)."""
    written = by_metric.get(FACTS)
    if written is None or written.sum() == 0:
        return {}
    return {rate: (sum(by_metric[f"facts_{c}"] for c in classes), written) for rate, classes in FACT_RATES.items()}


CONTENT_METRIC = "facts_matched"  # per note: the baseline that states most of what the note states is the fact bar


def best_of(iv: Intervals, systems: list[str], metric: str) -> str | None:
    """The system with the best point estimate of `metric` (lowest where lower is better), among those that
    have it; None when none has (or the metric has no better side)."""
    have = [s for s in systems if iv.has(s, metric)]
    if not have or direction(metric) == "neutral":
        return None
    sign = -1 if direction(metric) == "lower" else 1
    return max(have, key=lambda s: sign * iv.point(s, metric))


def differences(iv: Intervals, models: list[str], baselines_: list[str]) -> dict[str, dict[str, Any]]:
    """finetuned − pretrained, − each baseline, and − the best baseline of each metric (by its point estimate,
    in the metric's better direction; for the fact metrics the content baseline, CONTENT_METRIC's best), each with
    a direction-aware verdict; the chart-aware system (when scored)
    − the best baseline of each metric and − the fine-tuned model too."""
    pre, fine = VARIANTS
    if fine not in models:
        return {}
    metrics = [m for m in (*HEADLINE, "bits_per_byte", *FACT_METRICS) if iv.has(fine, m)]
    out: dict[str, dict[str, Any]] = {}
    for other in ([pre] if pre in models else []) + baselines_:
        out[difference_key(fine, other)] = {k: v for m in metrics if iv.has(other, m)
                                            for k, v in iv.difference(fine, other, m).items()}
    # The bar for the fact metrics is one baseline, the strongest on content (the most facts matched per note):
    # the best of each fact rate would be whichever states least (a copy of the prompt), a bar any model writing
    # new content fails whatever it writes.
    content = best_of(iv, baselines_, CONTENT_METRIC)
    for claimant in (c for c in EVAL_CLAIMANTS if c in models):
        best: dict[str, Any] = {}
        for m in (m for m in metrics if iv.has(claimant, m)):
            name = content if m in FACT_METRICS and content and iv.has(content, m) else best_of(iv, baselines_, m)
            if name is not None:
                best.update(iv.difference(claimant, name, m), **{f"{m}_baseline": name})
        if best:
            out[difference_key(claimant, BEST_BASELINE)] = best
        if claimant != fine:  # what choosing the chart's words changes against the model alone
            out[difference_key(claimant, fine)] = {k: v for m in metrics if iv.has(claimant, m)
                                                   for k, v in iv.difference(claimant, fine, m).items()}
    return out
