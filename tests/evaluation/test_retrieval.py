"""Retrieval: the nearest train prompt by TF-IDF cosine equals the dense argmax, whatever the blocks and budgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.evaluation.retrieval import retrieve_nearest


def dense_nearest(train_prompts: list[str], test_prompts: list[str]) -> np.ndarray:
    """The definition retrieval keeps: argmax of the full TF-IDF cosine row (first maximum wins)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True)
    train = vec.fit_transform(train_prompts)
    return (vec.transform(test_prompts) @ train.T).toarray().argmax(axis=1)


WORD = st.sampled_from(["pt", "alert", "hr", "nsr", "bp", "stable", "foley", "lasix", "sats", "ra", "nc", "pain"])
PROMPT = st.lists(WORD, min_size=0, max_size=8).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(st.lists(PROMPT, min_size=1, max_size=30), st.lists(PROMPT, min_size=1, max_size=12),
       st.sampled_from([0.0, 0.2, 0.5, 1.1]), st.sampled_from([1, 3, 10**9]), st.sampled_from([0, 8, 10**9]))
def test_retrieval_equals_the_dense_argmax(train, test, common_df, block_rows, dense_columns):
    """Duplicates (exact ties), prompts sharing no word, empty prompts; every word dense, some, none
    (by document frequency or by the dense budget); one test row per block, a few, all: the same index."""
    if not any(t.strip() for t in train):
        return  # no vocabulary: both give index 0 (tested below)
    got = retrieve_nearest(train, test, common_df=common_df, block_bytes=4 * len(train) * block_rows,
                           dense_bytes=4 * len(train) * dense_columns)
    assert got.tolist() == dense_nearest(train, test).tolist()


def test_retrieval_on_the_default_corpus_equals_the_dense_argmax():
    prepared = Path(__file__).parents[2] / "data/prepared"
    if not (prepared / "train.jsonl").is_file():
        prepared_rows = [(f"note {i} " + " ".join(str(i * k % 17) for k in range(9))) for i in range(200)]
        train, test = prepared_rows[:150], prepared_rows[150:]
    else:  # the real split when `dvc repro` has made it
        read = lambda name: [json.loads(line)["prompt"] for line in (prepared / f"{name}.jsonl").open()]  # noqa: E731
        train, test = read("train"), read("test")
    assert retrieve_nearest(train, test).tolist() == dense_nearest(train, test).tolist()
    assert retrieve_nearest(["", " "], ["pt alert"]).tolist() == [0]
    assert retrieve_nearest(["pt alert"], []).tolist() == []
