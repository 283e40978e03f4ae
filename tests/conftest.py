"""Shared fixtures: tiny random models and a small prepared data set, built offline in tmp dirs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from notelm.core.files import write_jsonl
from tests.tiny import CORPUS, make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """Return family -> directory of a tiny random model of that family (built once per session)."""
    built: dict[str, Path] = {}

    def get(family: str = "llama") -> Path:
        if family not in built:
            built[family] = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return built[family]

    return get


def make_rows(n: int, seed: int, start: int = 0) -> list[dict]:
    """`n` prepared examples built from the tiny corpus sentences."""
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        words = " ".join(rng.choice(CORPUS) for _ in range(3)).split()
        half = len(words) // 2
        rows.append({"note_id": str(i), "subject_id": i, "hadm_id": None, "category": "Nursing",
                     "chartdate": "2150-01-01", "prompt": " ".join(words[:half]), "target": " ".join(words[half:])})
    return rows


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A data/prepared dir (train 40, val 8, test 8 examples) under tmp_path; returns tmp_path."""
    for split, n, start in (("train", 40, 0), ("val", 8, 100), ("test", 8, 200)):
        write_jsonl(tmp_path / "data/prepared" / f"{split}.jsonl", make_rows(n, seed=start, start=start))
    return tmp_path
