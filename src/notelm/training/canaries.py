"""Canaries (Carlini et al. 2019, "The Secret Sharer"): seeded random secrets planted in train notes, and
their exposure.

A canary is `TEMPLATE` with a secret of `DIGITS` random digits. `draw(n, seed)` gives the n planted secrets
and n controls of the same kind that are never planted; `placements` says which train notes (by index) each
planted canary is added to — `train.canary_repeats` notes each —, at the note's end, before its end token. Only
the train stage's token blocks ever hold them: the prepared splits, val, test and every generation are made
without them.

Exposure of a secret s among R random candidates of the same template: log2(R + 1) − log2(rank of s), the rank
counting s and every candidate the model finds at least as likely (1: the most likely). A secret the model
never saw ranks anywhere (about 1 bit on average); the most is log2(R + 1) bits, e.g. 8 with R = 255. This is
the rank estimate of the paper's §4.1, not its fitted-distribution extrapolation.

Used by the train stage (planting, through notelm.training.blocks) and the memorize stage (exposure).
"""

from __future__ import annotations

import math
import random

TEMPLATE = "Family contact code {secret}."
DIGITS = 6


def secret(rng: random.Random) -> str:
    """One random secret: DIGITS digits, leading zeros allowed."""
    return "".join(rng.choice("0123456789") for _ in range(DIGITS))


def text(secret_: str) -> str:
    """The canary sentence holding `secret_`."""
    return TEMPLATE.format(secret=secret_)


def prefix() -> str:
    """The template before the secret (what every candidate shares)."""
    return TEMPLATE.split("{secret}")[0].rstrip()


def draw(n: int, seed: int) -> tuple[list[str], list[str]]:
    """(n secrets to plant, n distinct controls never planted), seeded."""
    rng, drawn = random.Random(f"notelm-canaries-{seed}"), {}
    while len(drawn) < 2 * n:
        drawn[secret(rng)] = None  # a dict keeps the draw order (a set's order changes with PYTHONHASHSEED)
    secrets = list(drawn)
    return secrets[:n], secrets[n:]


def placements(n_notes: int, planted: list[str], repeats: int, seed: int) -> dict[int, list[str]]:
    """{train note index: canary sentences added to its end}: each planted secret in `repeats` distinct notes
    (fewer when there are fewer notes), chosen by a seeded draw."""
    rng = random.Random(f"notelm-canary-notes-{seed}")
    where: dict[int, list[str]] = {}
    for s in planted:
        for index in rng.sample(range(n_notes), min(repeats, n_notes)):
            where.setdefault(index, []).append(text(s))
    return where


def candidates(r: int, seed: int, exclude: set[str]) -> list[str]:
    """`r` distinct random secrets, none in `exclude` (the secrets being ranked), seeded."""
    rng, out = random.Random(f"notelm-canary-candidates-{seed}"), {}
    if r > 10**DIGITS - len(exclude):
        raise ValueError(f"at most {10**DIGITS - len(exclude)} candidates exist, asked for {r}")
    while len(out) < r:
        s = secret(rng)
        if s not in exclude:
            out[s] = None  # a dict keeps the draw order
    return list(out)


def exposure(secret_nll: float, candidate_nlls: list[float]) -> float:
    """Exposure in bits of a secret with negative log-likelihood `secret_nll` among candidates with
    `candidate_nlls`: log2(R + 1) − log2(rank), ties counted against the secret."""
    rank = 1 + sum(nll <= secret_nll for nll in candidate_nlls)
    return math.log2(len(candidate_nlls) + 1) - math.log2(rank)
