"""arena.py: the blind-arena leaderboard from a hand-made ratings file."""

from __future__ import annotations

import math

import pytest

from notelm import arena


def rating(a: str, b: str, vote: str | None, prompt: str, blind: bool = True, rater: str = "r1",
           scores: tuple[int, int] = (3, 3), **efficiency) -> dict:
    out = {"model_a": a, "model_b": b, "vote": vote, "prompt": prompt, "blind": blind, "rater": rater,
           "scores_a": dict.fromkeys(arena.GRACE, scores[0]), "scores_b": dict.fromkeys(arena.GRACE, scores[1])}
    return out | {f"{k}_{side}": v for k, v in efficiency.items() for side in ("a", "b")}


def test_two_models_bradley_terry_is_the_log_odds_of_winning():
    # x beats y three times of four: p = 3/4, so the strengths differ by ln 3 on the log-odds scale
    rounds = [rating("x", "y", "A", f"p{i}") for i in range(3)] + [rating("y", "x", "A", "p3")]
    strengths = arena.bradley_terry(arena.battles(rounds), ["x", "y"])
    assert strengths[0] - strengths[1] == pytest.approx(arena.ELO_SCALE * math.log(3), rel=1e-4)
    assert strengths.mean() == pytest.approx(arena.ELO_BASE)
    ties = arena.bradley_terry(arena.battles([rating("x", "y", "tie", "p")] * 3), ["x", "y"])
    assert ties[0] == pytest.approx(ties[1])  # a tie is half a win for each


def test_the_leaderboard_orders_by_the_hand_computed_strengths_and_keeps_only_blind_votes():
    # a beats b and c, b beats c, each pairing decided 4:1; a named round for c is ignored
    pairs = [("a", "b"), ("b", "c"), ("a", "c")]
    ratings = [rating(w, l, "A", f"{w}{l}{i}", rater=f"r{i % 2}", scores=(5, 2)) for w, l in pairs for i in range(4)]
    ratings += [rating(l, w, "A", f"{w}{l}x", scores=(4, 3)) for w, l in pairs]
    ratings += [rating("c", "a", "A", "named", blind=False)] * 20 + [rating("a", "b", None, "no vote")]
    board = arena.leaderboard(ratings, samples=300)
    assert [row["model"] for row in board] == ["a", "b", "c"]
    assert board[0]["strength"] > board[1]["strength"] > board[2]["strength"]
    assert all(row["strength_ci_low"] <= row["strength"] <= row["strength_ci_high"] for row in board)
    assert [row["battles"] for row in board] == [10, 10, 10] and board[0]["raters"] == 2
    assert board[0]["rank"] == 1 and board[2]["rank"] >= board[1]["rank"]
    assert 3 < board[0]["generalization"] <= 5 and board[0]["generalization_ci"].startswith("[")


def test_rank_counts_only_models_whose_interval_lies_wholly_above():
    ratings = [rating("strong", "weak", "A", f"p{i}") for i in range(30)] + [rating("weak", "strong", "A", "q")]
    ratings += [rating("mid", "weak", "A", f"m{i}") for i in range(2)] + [rating("weak", "mid", "A", "m9")]
    board = {row["model"]: row for row in arena.leaderboard(ratings, samples=300)}
    assert board["strong"]["rank"] == 1
    assert board["weak"]["rank"] == 1 + sum(board[m]["strength_ci_low"] > board["weak"]["strength_ci_high"]
                                            for m in ("strong", "mid"))


def test_measured_efficiency_is_shown_beside_the_human_score():
    ratings = [rating("a", "b", "A", "p", ttft_s=0.5, tokens_per_s=20.0, peak_memory_mb=900.0),
               rating("b", "a", "B", "q", ttft_s=1.5, tokens_per_s=10.0, peak_memory_mb=1100.0)]
    row = next(r for r in arena.leaderboard(ratings, samples=50) if r["model"] == "a")
    assert row["ttft_s"] == 1.0 and row["tokens_per_s"] == 15.0 and row["peak_memory_mb"] == 1000.0
    assert row["efficiency"] == 3.0


def test_no_blind_battles_no_leaderboard():
    assert arena.leaderboard([rating("a", "b", "A", "p", blind=False)]) == []


def test_the_bootstrap_can_resample_raters_instead_of_prompts():
    """One rater is one unit: resampling raters then has nothing to vary (the interval covers no new raters),
    while resampling that rater's prompts does; two raters who disagree widen the rater interval."""
    one = [rating("x", "y", "A", f"p{i}", rater="r1") for i in range(6)] + [rating("y", "x", "A", "q", rater="r1")]
    by_rater = {r["model"]: r for r in arena.leaderboard(one, samples=200, resample="rater")}
    by_prompt = {r["model"]: r for r in arena.leaderboard(one, samples=200, resample="prompt")}
    assert by_rater["x"]["strength_ci_low"] == by_rater["x"]["strength_ci_high"] == by_rater["x"]["strength"]
    assert by_prompt["x"]["strength_ci_high"] > by_prompt["x"]["strength_ci_low"]
    two = one + [rating("y", "x", "A", f"s{i}", rater="r2") for i in range(5)]
    wide = {r["model"]: r for r in arena.leaderboard(two, samples=200, resample="rater")}
    assert wide["x"]["strength_ci_high"] > wide["x"]["strength_ci_low"]
    with pytest.raises(ValueError, match="resample must be one of prompt, rater"):
        arena.leaderboard(one, resample="day")
