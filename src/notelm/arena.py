"""The arena's ratings file: one JSON line per rated round, appended safely, read back, summarised per model.

A record holds the prompt, both models' outputs and timings, the GRACE scores (Generalization,
Relevance, Artistry, Efficiency; 1-5) of each side and the vote. The file may quote patient text, so
it lives under the git-ignored ratings/ (paths.RATINGS).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from notelm.core.errors import NoteLMError
from notelm.report.markdown import fmt, table

log = logging.getLogger(__name__)

GRACE = ("generalization", "relevance", "artistry", "efficiency")
VOTES = ("A", "B", "tie")


class Refused(NoteLMError):
    """A request the app declines with a message for the user (empty or over-long prompt, bad settings or scores)."""


_RATINGS_LOCK = threading.Lock()


def append_rating(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one complete JSON line to `path` (created if absent), flushed and fsynced.

    Writers in this process are serialised by a lock, writers in other processes by flock. If an
    earlier crash left a partial last line, the new line starts on a line of its own.
    """
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _RATINGS_LOCK, open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_ratings(path: Path) -> list[dict[str, Any]]:
    """Every complete rating in `path` (none when absent); a torn or corrupt line is skipped with a warning."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            log.warning("%s:%d: not a complete JSON object; skipped", path, number)
    return rows


def rating_record(round_: dict[str, Any], scores_a: list, scores_b: list, vote: str | None,
                  rater: str | None = None) -> dict[str, Any]:
    """The line saved for one rated arena round: prompt, decoding, whether it was blind, the signed-in rater, and
    per side the model, output, GRACE scores and measured efficiency; Refused unless all eight scores are 1-5
    and the vote valid."""
    scores = {}
    for side, values in (("a", scores_a), ("b", scores_b)):
        if len(values) != len(GRACE) or any(v not in (1, 2, 3, 4, 5) for v in values):
            raise Refused(f"score every GRACE dimension of output {side.upper()} from 1 to 5")
        scores[side] = {dim: int(v) for dim, v in zip(GRACE, values)}
    if vote not in (None, "", *VOTES):
        raise Refused(f"vote must be one of {', '.join(VOTES)} (or none), got {vote!r}")
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "prompt": round_["prompt"],
              "decoding": round_["decoding"], "vote": vote or None, "blind": bool(round_.get("blind")),
              "rater": rater}
    for side in ("a", "b"):
        run = round_[side]
        record[f"model_{side}"] = run["model"]
        record[f"output_{side}"] = run["completion"]
        record[f"scores_{side}"] = scores[side]
        for key in ("seconds", "ttft_s", "tokens_per_s", "peak_memory_mb"):
            record[f"{key}_{side}"] = run.get(key)
    return record


def human_summary(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: number of rated outputs, mean score per GRACE dimension, and votes won / lost / tied."""
    by_model: dict[str, dict[str, Any]] = {}
    for r in ratings:
        for side in ("a", "b"):
            model, scores = r.get(f"model_{side}"), r.get(f"scores_{side}")
            if not model or not isinstance(scores, dict):
                continue
            row = by_model.setdefault(model, {"model": model, "ratings": 0, "wins": 0, "losses": 0, "ties": 0,
                                              **{d: 0.0 for d in GRACE}})
            row["ratings"] += 1
            for d in GRACE:
                row[d] += float(scores.get(d, 0))
            vote = r.get("vote")
            if vote == "tie":
                row["ties"] += 1
            elif vote in ("A", "B"):
                row["wins" if vote.lower() == side else "losses"] += 1
    for row in by_model.values():
        for d in GRACE:
            row[d] = round(row[d] / row["ratings"], 2)
    return sorted(by_model.values(), key=lambda row: row["model"])


# ---------------------------------------------------------------- the leaderboard
ELO_SCALE = 400 / math.log(10)  # Bradley–Terry log-strengths on the Elo scale FastChat's arena uses
ELO_BASE = 1000.0


def battles(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blind rounds that were voted on, as {a, b, outcome (1: A won, 0: B won, 0.5: tie), prompt, rater}.
    Named rounds are left out: a rater who saw the names may have voted for them."""
    outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}
    return [{"a": r["model_a"], "b": r["model_b"], "outcome": outcome[r["vote"]], "prompt": r.get("prompt", ""),
             "rater": r.get("rater")}
            for r in ratings if r.get("blind") and r.get("vote") in outcome and r.get("model_a") != r.get("model_b")]


def bradley_terry(rounds: list[dict[str, Any]], models: list[str]) -> np.ndarray:
    """Bradley–Terry strengths of `models` on the Elo scale (mean 1000), fitted by logistic regression as FastChat
    does: one column per model (+1 side A, −1 side B). A round of outcome o (1: A won, 0: B won, 0.5: tie) enters
    as "A won" with weight o and "B won" with weight 1 − o, and mirrored (sides swapped), so a tie is half a
    win for each and the sides carry no advantage."""
    from sklearn.linear_model import LogisticRegression

    index = {m: i for i, m in enumerate(models)}
    xs, ys, weights = [], [], []
    for r in rounds:
        x = np.zeros(len(models))
        x[index[r["a"]]], x[index[r["b"]]] = 1, -1
        for sign in (1, -1):  # as played, and mirrored
            for won, weight in ((1, r["outcome"]), (0, 1 - r["outcome"])):
                if weight:
                    xs.append(sign * x)
                    ys.append(won if sign == 1 else 1 - won)
                    weights.append(weight)
    fit = LogisticRegression(fit_intercept=False, C=1e6, max_iter=1000, tol=1e-8)
    fit.fit(np.array(xs), np.array(ys), sample_weight=np.array(weights))
    strengths = ELO_SCALE * fit.coef_[0]
    return strengths - strengths.mean() + ELO_BASE


RESAMPLE = ("prompt", "rater")  # what the leaderboard's bootstrap treats as the independent unit


def leaderboard(ratings: list[dict[str, Any]], samples: int = 1000, seed: int = 0,
                resample: str = "prompt") -> list[dict[str, Any]]:
    """Per model: Bradley–Terry strength over the blind battles with its 95 % interval (a bootstrap that resamples
    prompts, or raters: `resample`, so that the interval covers new prompts or new raters), rank (1 + the models
    whose interval lies wholly above), battles, raters, mean GRACE scores with 95 % intervals, and the measured
    efficiency (latency to first token, tokens/s, peak memory). Best first."""
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, got {resample!r}")
    rounds = battles(ratings)
    models = sorted({m for r in rounds for m in (r["a"], r["b"])})
    if len(models) < 2:
        return []
    point = bradley_terry(rounds, models)
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rounds:
        by_unit.setdefault(str(r[resample] or "(not signed in)"), []).append(r)
    units = list(by_unit)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(samples):
        sample = [r for i in rng.integers(0, len(units), len(units)) for r in by_unit[units[i]]]
        present = sorted({m for r in sample for m in (r["a"], r["b"])})
        if present == models:
            reps.append(bradley_terry(sample, models))
    low, high = np.percentile(np.array(reps), [2.5, 97.5], axis=0) if reps else (point, point)
    rows = [{"model": m, "strength": round(float(point[i]), 1), "strength_ci_low": round(float(min(low[i], point[i])), 1),
             "strength_ci_high": round(float(max(high[i], point[i])), 1),
             "battles": sum(m in (r["a"], r["b"]) for r in rounds),
             "raters": len({r["rater"] for r in rounds if m in (r["a"], r["b"]) and r["rater"]})}
            for i, m in enumerate(models)]
    for row in rows:
        row["rank"] = 1 + sum(other["strength_ci_low"] > row["strength_ci_high"] for other in rows)
        row.update(_grace_and_efficiency([r for r in ratings if r.get("blind")], row["model"], rng))
    return sorted(rows, key=lambda r: (r["rank"], -r["strength"]))


def _grace_and_efficiency(ratings: list[dict[str, Any]], model: str, rng: np.random.Generator) -> dict[str, Any]:
    """Mean GRACE score per dimension with a 95 % bootstrap interval over this model's rated outputs, and the
    mean measured latency to first token, tokens/s and peak memory of its outputs."""
    sides = [(r, s) for r in ratings for s in ("a", "b") if r.get(f"model_{s}") == model]
    out: dict[str, Any] = {}
    for dim in GRACE:
        values = np.array([float(r[f"scores_{s}"][dim]) for r, s in sides if dim in (r.get(f"scores_{s}") or {})])
        if len(values):
            means = values[rng.integers(0, len(values), (500, len(values)))].mean(axis=1)
            out[dim] = round(float(values.mean()), 2)
            out[f"{dim}_ci"] = f"[{np.percentile(means, 2.5):.2f}, {np.percentile(means, 97.5):.2f}]"
    for key in ("ttft_s", "tokens_per_s", "peak_memory_mb"):
        values = [r.get(f"{key}_{s}") for r, s in sides if isinstance(r.get(f"{key}_{s}"), (int, float))]
        out[key] = round(float(np.mean(values)), 2) if values else None
    return out


LEADERBOARD_COLUMNS = ["rank", "model", "strength", "strength_ci_low", "strength_ci_high", "battles", "raters",
                       *(c for dim in GRACE for c in (dim, f"{dim}_ci")), "ttft_s", "tokens_per_s", "peak_memory_mb"]


def leaderboard_markdown(ratings_path: Path, resample: str = "prompt") -> str:
    """The leaderboard of a ratings file as a Markdown section (for `notelm compare --ratings`)."""
    if not Path(ratings_path).is_file():
        raise NoteLMError(f"{ratings_path}: no ratings file (the app appends to ratings/arena.jsonl)")
    ratings = read_ratings(Path(ratings_path))
    board = leaderboard(ratings, resample=resample)
    head = (f"Blind battles of `{ratings_path}` ({len(battles(ratings))} of {len(ratings)} ratings; named rounds "
            f"are not counted): Bradley–Terry strength on the Elo scale with a 95 % interval from resampling "
            f"{resample}s; rank = 1 + the models whose interval lies wholly above.\n\n")
    if not board:
        return head + "Fewer than two models have blind battles: no leaderboard yet.\n"
    rows = [[fmt(row.get(c), None) for c in LEADERBOARD_COLUMNS] for row in board]  # values as they are
    return head + "\n".join(table(LEADERBOARD_COLUMNS, rows)) + "\n"
