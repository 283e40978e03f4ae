"""notelm.training.canaries: seeded secrets, where they are planted, and the rank estimate of exposure."""

from __future__ import annotations

import math

import pytest

from notelm.training import canaries


def test_draw_is_seeded_and_controls_are_never_the_planted_secrets():
    planted, controls = canaries.draw(3, seed=7)
    assert (planted, controls) == canaries.draw(3, seed=7) and planted != canaries.draw(3, seed=8)[0]
    assert len(set(planted + controls)) == 6 and all(len(s) == canaries.DIGITS and s.isdigit() for s in planted)


def test_each_canary_goes_to_repeats_distinct_notes():
    where = canaries.placements(50, ["111111", "222222"], repeats=4, seed=0)
    assert sum(len(v) for v in where.values()) == 8
    for s in ("111111", "222222"):
        assert sum(canaries.text(s) in v for v in where.values()) == 4
    assert sum(len(v) for v in canaries.placements(2, ["111111"], repeats=5, seed=0).values()) == 2


def test_exposure_is_log2_candidates_plus_one_less_log2_rank():
    assert canaries.exposure(1.0, [2.0, 3.0, 4.0]) == pytest.approx(2.0)  # rank 1 of 4
    assert canaries.exposure(5.0, [2.0, 3.0, 4.0]) == pytest.approx(0.0)  # rank 4 of 4
    assert canaries.exposure(3.0, [2.0, 3.0, 4.0]) == pytest.approx(2 - math.log2(3))  # a tie counts against it


def test_candidates_exclude_the_ranked_secrets_and_the_template_splits_at_the_secret():
    pool = canaries.candidates(200, seed=0, exclude={"000000"})
    assert len(set(pool)) == 200 and "000000" not in pool and pool == canaries.candidates(200, 0, {"000000"})
    assert canaries.text("123456") == f"{canaries.prefix()} 123456."


def test_the_draw_is_the_same_in_every_process():
    """Python salts str hashes per process: nothing drawn may depend on a set's order."""
    import subprocess
    import sys

    code = "from notelm.training import canaries; print(canaries.draw(4, 42))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(salt), "PATH": ""}).stdout for salt in (1, 2, 3)}
    assert len(runs) == 1 and str(canaries.draw(4, 42)) in runs.pop()
