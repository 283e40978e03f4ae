"""The generate stage: one line per test example, the continuation only, no wall-clock figures in the file."""

from __future__ import annotations

import json

from notelm.core.files import read_jsonl
from notelm.core.paths import SOURCE_RECORD
from notelm.stages import generate

ROW = {"model": "tiny"}  # the `model:` whose recorded row (models/base/tiny) gives the consent to run repository code


def run(params, model_dir, out):
    """The stage as dvc.yaml runs it, with the row base_model would have recorded for `model: tiny`."""
    base = out.parents[1] / "models/base/tiny"
    base.mkdir(parents=True, exist_ok=True)
    (base / SOURCE_RECORD).write_text(json.dumps({"row": {"name": "tiny", "source": "unused"}}))
    return generate.run(params, generate.Paths(model_dir=str(model_dir), out=str(out)))


def test_generations_hold_the_continuation_only_and_no_timing(prepared, tiny_model_factory, monkeypatch):
    monkeypatch.chdir(prepared)
    params = {**ROW, "generate": {"max_new_tokens": 5, "batch_size": 3}}
    out = prepared / "generations/pretrained.jsonl"
    summary = run(params, tiny_model_factory("gpt2"), out)
    rows = read_jsonl(out)
    test = read_jsonl(prepared / "data/prepared/test.jsonl")
    assert summary["examples"] == len(rows) == len(test)
    for row, ex in zip(rows, test):
        assert set(row) == {"note_id", "prompt", "reference", "completion", "prompt_tokens", "completion_tokens",
                            "stop", "target_nll", "target_tokens"}
        assert row["note_id"] == ex["note_id"] and row["reference"] == ex["target"]
        assert not row["completion"].startswith(ex["prompt"])
        assert 0 < row["completion_tokens"] <= 5 and row["stop"] in ("eos", "budget")
        assert (row["stop"] == "budget") <= (row["completion_tokens"] == 5)
    first = out.read_bytes()
    run(params, tiny_model_factory("gpt2"), out)
    assert out.read_bytes() == first  # the same model writes the same file
    assert json.loads((prepared / "logs/generate_pretrained.json").read_text())["seconds"] >= 0


def test_limit_keeps_the_first_examples(prepared, tiny_model_factory, monkeypatch):
    monkeypatch.chdir(prepared)
    out = prepared / "generations/finetuned.jsonl"
    run({**ROW, "generate": {"max_new_tokens": 2, "limit": 3}}, tiny_model_factory("llama"), out)
    assert [r["note_id"] for r in read_jsonl(out)] == [r["note_id"] for r in read_jsonl(out.parents[1] / "data/prepared/test.jsonl")][:3]


def test_the_auto_budget_is_the_word_cap_in_the_longest_reference_words(prepared, tiny_model_factory, monkeypatch):
    import math

    from notelm.config.generate import GenerateParams
    from notelm.generation.decoding import token_budget
    from notelm.training.weights import load_tokenizer

    monkeypatch.chdir(prepared)
    tok = load_tokenizer(tiny_model_factory("llama"))
    targets = [r["target"] for r in read_jsonl(prepared / "data/prepared/test.jsonl")]
    per_word = max(len(tok(" " + w, add_special_tokens=False)["input_ids"]) for t in targets for w in t.split())
    longest = max(len(tok(" " + t, add_special_tokens=False)["input_ids"]) for t in targets)
    budget, round_tokens = token_budget(tok, targets, GenerateParams(budget_margin=2.0), 20)
    assert budget == math.ceil(20 * per_word * 2.0) and round_tokens == min(budget, longest)
    assert token_budget(tok, targets, GenerateParams(max_new_tokens=7), 20) == (7, 7)
    summary = run({**ROW, "generate": {}, "data": {"max_target_words": 20}}, tiny_model_factory("llama"),
                  prepared / "generations/pretrained.jsonl")
    assert summary["max_new_tokens"] == token_budget(tok, targets, GenerateParams(), 20)[0]
