"""The suggest stage on tiny checkpoints: every system types every scored note; a chart that holds the note word
for word lets chart_copy reach the ceiling; the claim is each model against the best proposer, paired."""

from __future__ import annotations

import json
import shutil

import pytest

from notelm.core.files import read_jsonl, write_jsonl
from notelm.core.paths import SOURCE_RECORD
from notelm.evaluation.choose import THRESHOLDS
from notelm.stages import suggest

CHART = "Pt alert and oriented x3, follows commands, MAE. HR 80s NSR, BP stable. LS clear bilaterally, RA sats 97%."
PARAMS = {"model": "tiny", "suggest": {"budget": 8, "bootstrap_samples": 200}}


def note(note_id: str, subject: int, day: int, prompt: str, target: str, scored: bool = True) -> dict:
    return {"note_id": note_id, "subject_id": subject, "hadm_id": None, "chartdate": f"2150-01-0{day}",
            "charttime": None, "prompt": prompt, "target": target, "rest": target, "scored": scored}


@pytest.fixture
def project(tmp_path, tiny_model_factory, monkeypatch):
    """tmp_path as a project: two patients, each with an earlier context note the scored one repeats."""
    monkeypatch.chdir(tmp_path)
    words = CHART.split()
    prompt, target = " ".join(words[:7]), " ".join(words[7:])
    test = [note("1", 1, 1, prompt, target, scored=False), note("2", 1, 2, prompt, target),
            note("3", 2, 1, prompt, "Skin intact. Pain controlled.", scored=False),
            note("4", 2, 2, prompt, "Family visited, updated on plan of care.")]
    write_jsonl("data/prepared/test.jsonl", test)
    write_jsonl("data/prepared/train.jsonl", [note("9", 9, 1, prompt, "Family visited, updated on plan of care.")])
    write_jsonl("data/prepared/val.jsonl", [
        note("5", 5, 1, prompt, target), note("6", 5, 2, prompt, "BP stable. LS clear bilaterally."),
        note("7", 6, 1, prompt, "Skin intact.")])
    base = shutil.copytree(tiny_model_factory("llama"), tmp_path / "models/base/tiny")
    (base / SOURCE_RECORD).write_text(json.dumps({"row": {"name": "tiny", "source": "unused"}}))
    shutil.copytree(tiny_model_factory("gpt2"), tmp_path / "models/finetuned")
    return tmp_path


def test_every_system_types_every_scored_note_and_the_claim_is_against_the_best_proposer(project):
    result = suggest.run(PARAMS)
    assert set(result) >= {"pretrained", "finetuned", "chart_copy", "ngram", "finetuned_vs_best_proposer"}
    lines = read_jsonl(project / "generations/suggestions.jsonl")
    systems = ("pretrained", "finetuned", "chart_copy", "ngram", "chart_aware", "chart_aware_oracle")
    assert {(x["note_id"], x["system"]) for x in lines} == {(n, s) for n in ("2", "4") for s in systems}
    chart = {x["note_id"]: x for x in lines if x["system"] == "chart_copy"}
    assert chart["2"]["keystrokes"] == chart["2"]["minimum"]  # its chart holds the note word for word: the ceiling
    for x in lines:  # the count of suggestions shown and the suggestions themselves, both kept
        assert isinstance(x["shown"], int) and x["shown"] == sum(1 for words in x["suggestions"] if words)
    ngram = {x["note_id"]: x for x in lines if x["system"] == "ngram"}
    assert ngram["4"]["keystrokes"] == ngram["4"]["minimum"]  # the one train note is this reference
    for system in systems:
        block = result[system]
        assert block["keystroke_savings_ci_low"] <= block["keystroke_savings"] <= block["keystroke_savings_ci_high"]
        assert block["keystroke_savings"] <= block["ceiling"] + 1e-12
    claim = result["finetuned_vs_best_proposer"]
    best = claim["keystroke_savings_baseline"]
    assert best in ("chart_copy", "ngram")
    assert claim["keystroke_savings"] == pytest.approx(result["finetuned"]["keystroke_savings"] -
                                                       result[best]["keystroke_savings"])
    assert json.loads((project / "metrics/detail/suggest.json").read_text()) == json.loads(json.dumps(result))
    head = json.loads((project / "metrics/suggest.json").read_text())  # the headline: no interval bounds
    assert head["finetuned"] == {k: result["finetuned"][k] for k in ("keystroke_savings", "accept_rate")}
    assert head["finetuned_vs_best_proposer"] == {k: claim[k] for k in (
        "keystroke_savings", "keystroke_savings_verdict", "keystroke_savings_baseline")}
    assert not [k for block in head.values() if isinstance(block, dict) for k in block if "_ci_" in k]


def test_limit_types_only_the_first_notes(project):
    result = suggest.run({**PARAMS, "suggest": {**PARAMS["suggest"], "limit": 1}})
    assert result["n_examples"] == 1


def test_the_chart_aware_system_is_a_claimant_and_its_choice_is_recorded(project):
    result = suggest.run(PARAMS)
    lines = {(x["note_id"], x["system"]): x for x in read_jsonl(project / "generations/suggestions.jsonl")}
    # note 2's chart holds it word for word: the oracle, taking the candidate with the most right words at each
    # boundary, types it as the chart copy does (at its ceiling)
    assert lines["2", "chart_aware_oracle"]["keystrokes"] == lines["2", "chart_copy"]["keystrokes"]
    assert lines["2", "chart_aware_oracle"]["keystrokes"] == lines["2", "chart_aware_oracle"]["minimum"]
    claim = result["chart_aware_vs_best_proposer"]
    assert claim["keystroke_savings"] == pytest.approx(result["chart_aware"]["keystroke_savings"] -
                                                       result[claim["keystroke_savings_baseline"]]["keystroke_savings"])
    choice = result["chart_aware_choice"]
    assert choice["chosen_on"] == "val" and choice["tuning_notes"] == 1  # note 6, patient 5's second
    assert choice["threshold"] in THRESHOLDS and set(choice["keystroke_savings_by_threshold"]) == {
        f"{t:g}" for t in THRESHOLDS}
    head = json.loads((project / "metrics/suggest.json").read_text())
    assert head["chart_aware_choice"] == {"threshold": choice["threshold"]}


def test_the_threshold_is_chosen_on_validation_notes_only(project, monkeypatch):
    """A signal planted in test alone (its notes rewritten around a marker word) never reaches the choice: tune
    sees only validation notes, and the threshold and its curve stay the same."""
    seen = []
    real = suggest.tune
    monkeypatch.setattr(suggest, "tune", lambda notes, k: seen.append(notes) or real(notes, k))
    first = suggest.run(PARAMS)["chart_aware_choice"]
    planted = [{**r, "target": "PLANTED " * 6 + r["target"]} for r in read_jsonl(project / "data/prepared/test.jsonl")]
    write_jsonl(project / "data/prepared/test.jsonl", planted)
    second = suggest.run(PARAMS)["chart_aware_choice"]
    assert first == {**second, "shown_from": first["shown_from"]}
    assert all("PLANTED" not in words for notes in seen for words, _ in notes)
    assert [words for words, _ in seen[0]] == ["BP stable. LS clear bilaterally.".split()]  # the val note 6
