"""The follow stage on tiny checkpoints: every scored test note gets a continuation in the generations format,
tau is chosen on validation notes only, and a chart the model is made to trust is copied."""

from __future__ import annotations

import json

from notelm.core.files import read_jsonl, write_jsonl
from notelm.evaluation.examples import GENERATION_FIELDS
from notelm.stages import follow
from tests.stages.test_suggest import CHART, project  # noqa: F401, F811 - the fixture: two test patients, val, train

PARAMS = {"model": "tiny", "follow": {"taus": [0.0, 2.0]}, "data": {"max_target_words": 6},
          "generate": {"max_new_tokens": 12}}


def test_every_scored_note_is_continued_and_tau_is_chosen_on_validation(project, monkeypatch):
    seen = []
    real = follow.alternate
    monkeypatch.setattr(follow, "alternate", lambda rows, n: seen.append(rows) or real(rows, n))
    result = follow.run(PARAMS)
    lines = read_jsonl(project / "generations/chart_aware.jsonl")
    assert [x["note_id"] for x in lines] == ["2", "4"] and all(set(GENERATION_FIELDS) <= set(x) for x in lines)
    assert seen and all(r["note_id"] in {"5", "6", "7"} for rows in seen for r in rows)  # val rows only
    # val note 6 repeats a part of its chart (note 5): copying it (tau 0) scores far above a random model alone
    assert result["threshold"] == 0.0 and result["tuning_notes"] == 1
    assert result["val_rougeL_by_threshold"]["0"] > result["val_rougeL_by_threshold"]["2"]
    copied = {x["note_id"]: x for x in lines}["2"]  # its chart (note 1) holds it word for word
    assert copied["completion"].split()[:6] == CHART.split()[7:13] and copied["from_chart"] > 0
    assert json.loads((project / "metrics/follow.json").read_text()) == json.loads(json.dumps(result))


def test_a_signal_planted_in_test_does_not_move_tau(project, monkeypatch):
    """Test references rewritten with words of many tokens: with generate's `auto` budget they would lengthen the
    validation runs' budget if it were computed from test (the tiny model rarely writes a space, so its
    continuations end at the budget); tau and its curve stay the same."""
    params = {**PARAMS, "generate": {"max_new_tokens": "auto", "budget_margin": 1.0}}
    first = follow.run(params)
    rows = read_jsonl(project / "data/prepared/test.jsonl")
    write_jsonl(project / "data/prepared/test.jsonl", [{**r, "target": "x7" * 30 + " zebra " * 8} for r in rows])
    budgets = []  # the references each token budget is computed from
    real = follow.token_budget
    monkeypatch.setattr(follow, "token_budget", lambda tok, targets, *a: budgets.append(targets) or real(tok, targets, *a))
    second = follow.run(params)
    assert budgets[0] == ["BP stable. LS clear bilaterally."]  # the validation runs': their own reference only
    assert {k: first[k] for k in ("threshold", "val_rougeL_by_threshold")} == {
        k: second[k] for k in ("threshold", "val_rougeL_by_threshold")}
