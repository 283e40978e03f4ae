"""The suggest stage on tiny checkpoints: every system types every scored note; a chart that holds the note word
for word lets chart_copy reach the ceiling; the claim is each model against the best proposer, paired."""

from __future__ import annotations

import json
import shutil

import pytest

from notelm.core.files import read_jsonl, write_jsonl
from notelm.core.paths import SOURCE_RECORD
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
    base = shutil.copytree(tiny_model_factory("llama"), tmp_path / "models/base/tiny")
    (base / SOURCE_RECORD).write_text(json.dumps({"row": {"name": "tiny", "source": "unused"}}))
    shutil.copytree(tiny_model_factory("gpt2"), tmp_path / "models/finetuned")
    return tmp_path


def test_every_system_types_every_scored_note_and_the_claim_is_against_the_best_proposer(project):
    result = suggest.run(PARAMS)
    assert set(result) >= {"pretrained", "finetuned", "chart_copy", "ngram", "finetuned_vs_best_proposer"}
    lines = read_jsonl(project / "generations/suggestions.jsonl")
    assert {(x["note_id"], x["system"]) for x in lines} == {(n, s) for n in ("2", "4")
                                                            for s in ("pretrained", "finetuned", "chart_copy", "ngram")}
    chart = {x["note_id"]: x for x in lines if x["system"] == "chart_copy"}
    assert chart["2"]["keystrokes"] == chart["2"]["minimum"]  # its chart holds the note word for word: the ceiling
    ngram = {x["note_id"]: x for x in lines if x["system"] == "ngram"}
    assert ngram["4"]["keystrokes"] == ngram["4"]["minimum"]  # the one train note is this reference
    for system in ("pretrained", "finetuned", "chart_copy", "ngram"):
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
