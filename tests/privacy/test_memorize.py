"""notelm.privacy.memorize on tiny models: a model made to learn one note gives it back, a canary it was trained on
many times is exposed more than one it never saw, and the app's refusal reads the gate of the very weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from notelm.privacy.memorize import (
    canary_exposures,
    checkpoint_id,
    extract,
    gap,
    longest_common_run,
    matched_pairs,
    note_ids,
    refusal,
    score_extraction,
)
from notelm.training import canaries
from notelm.training.weights import load_checkpoint

NOTE = ("Pt alert and oriented x3, follows commands, MAE. HR 80s NSR, BP stable. LS clear bilaterally, RA sats 97%. "
        "Abd soft NT/ND, +BS. Foley draining clear yellow urine. Skin intact. Pain controlled with PRN tylenol.")
OTHER = ("Family visited, updated on plan of care. Plan: continue to monitor, wean levophed as tolerated, f/u AM "
         "labs. Skin intact. LS clear bilaterally, RA sats 97%. HR 80s NSR, BP stable. Pt alert and oriented x3.")


def overfit(model, tokenizer, texts: list[str], steps: int = 150, lr: float = 1e-2):
    """Train `model` on `texts` (one batch, every step) until it has learnt them; returns it in eval mode."""
    import torch

    torch.manual_seed(0)
    ids = tokenizer(texts, padding=True, return_tensors="pt")
    labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def row(note_id: str, subject: int, text: str) -> dict:
    words = text.split()
    return {"note_id": note_id, "subject_id": subject, "prompt": " ".join(words[:5]), "target": " ".join(words[5:])}


@pytest.fixture
def tiny(tiny_model_factory):
    return load_checkpoint(tiny_model_factory("llama"))


def test_a_model_trained_on_one_note_gives_it_back_and_not_an_unseen_one(tiny):
    model, tokenizer = tiny
    overfit(model, tokenizer, [NOTE])
    train, test = note_ids(tokenizer, [row("a", 1, NOTE)], 24), note_ids(tokenizer, [row("b", 2, OTHER)], 24)
    (pair,) = matched_pairs(train, test, 5, seed=0)
    seqs = [pair[0][1], pair[1][1]]
    written = extract(model, tokenizer, seqs, k=8, m=16, batch_size=2)
    scores = score_extraction(tokenizer, seqs, written, k=8, m=16)
    assert scores["exact"].tolist() == [1.0, 0.0]
    assert scores["lcs"][0] == 16 and scores["lcs"][1] < 16
    assert scores["rougeL"][0] == pytest.approx(1.0) and scores["rougeL"][1] < 1.0


def test_a_canary_trained_many_times_is_exposed_more_than_one_never_seen(tiny):
    model, tokenizer = tiny
    planted, controls = canaries.draw(1, seed=3)
    overfit(model, tokenizer, [f"{NOTE} {canaries.text(planted[0])}"] * 4, steps=120)
    bits = canary_exposures(model, tokenizer, {"planted": planted, "controls": controls}, 63, seed=0, batch_size=64)
    assert bits["planted"][0] == pytest.approx(6.0)  # ranked first of 64: log2(64)
    assert bits["controls"][0] < bits["planted"][0]


def test_matched_pairs_pair_each_test_note_with_the_nearest_train_length():
    train = [({"note_id": str(n)}, [0] * n) for n in (10, 30, 50, 70)]
    test = [({"note_id": "t"}, [0] * 48), ({"note_id": "u"}, [0] * 12)]
    pairs = matched_pairs(train, test, 5, seed=1)
    assert sorted((len(a[1]), len(b[1])) for a, b in pairs) == [(10, 12), (50, 48)]
    assert len(matched_pairs(train, test, 1, seed=1)) == 1


def test_longest_common_run_and_the_gap_interval():
    assert longest_common_run([1, 2, 3, 4, 9], [0, 2, 3, 4, 5]) == 3 and longest_common_run([1], [2]) == 0
    train = np.array([1.0] * 9 + [0.0])
    out = gap(train, np.zeros(10), list("aabcdefghi"), list("klmnopqrst"), 500, 0)
    assert out["gap"] == 0.9 and out["gap_ci_low"] <= 0.9 <= out["gap_ci_high"] and out["gap_verdict"] == "higher"
    few = gap(np.array([1.0, 0.0]), np.zeros(2), ["a", "b"], ["c", "d"], 500, 0)  # one resample of 4: train all 0
    assert few["gap_ci_low"] == 0.0 and few["gap_verdict"] == "not distinguishable"
    same = gap(np.ones(4), np.ones(4), list("abcd"), list("efgh"), 500, 0)
    assert same["gap"] == 0 and same["gap_verdict"] == "not distinguishable"


def test_refusal_reads_the_gate_of_these_very_weights(tiny_model_factory, tmp_path):
    weights = tiny_model_factory("llama")
    detail = tmp_path / "memorization.json"
    assert refusal(weights, detail) is None  # never measured
    record = {"gate": "fail", "checkpoints": {"pretrained": "0" * 16, "finetuned": checkpoint_id(weights)},
              "problems": {"finetuned": ["finetuned.exact_gap = 0.5 > 0.1 allowed"]}}
    detail.write_text(json.dumps(record))
    assert "finetuned.exact_gap = 0.5" in refusal(weights, detail)
    detail.write_text(json.dumps({**record, "checkpoints": {"finetuned": "f" * 16}}))
    assert refusal(weights, detail) is None  # the gate measured other weights
    detail.write_text(json.dumps({**record, "gate": "pass"}))
    assert refusal(weights, detail) is None
