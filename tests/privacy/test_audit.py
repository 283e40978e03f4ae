"""Tests of the leakage engine (notelm.privacy.audit): planted duplicates are found, clean splits read zero,
the MinHash and the LSH banding are datasketch's, and the metrics agree with a brute-force count."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.config.audit import AuditParams
from notelm.core.errors import NoteLMError
from notelm.privacy.audit import _Featurizer, audit, lsh_bands

TEST_KEYS = {
    "n_train", "n_test", "n_test_subjects", "n_test_admissions", "ngram13_containment",
    "subject_overlap", "subject_overlap_rate", "admission_overlap", "admission_overlap_rate",
    "exact_dup_test_in_train", "exact_dup_test_in_train_rate", "target_in_train", "target_in_train_rate",
    "near_dup_test_in_train", "near_dup_test_in_train_rate",
}


def vocab(prefix: str, n: int = 400) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def note_words(rng: random.Random, words: list[str], n: int = 150) -> list[str]:
    return [rng.choice(words) for _ in range(n)]


def row(i: int, words: list[str], subject: int | None = None, hadm: int | None = None, split: float = 0.5) -> dict:
    """A prepared example whose prompt is the first `split` of `words` and whose target is the rest."""
    cut = int(len(words) * split)
    return {"note_id": str(i), "subject_id": i if subject is None else subject, "hadm_id": hadm,
            "category": "Nursing", "chartdate": "2150-01-01",
            "prompt": " ".join(words[:cut]), "target": " ".join(words[cut:])}


def text(r: dict) -> str:
    return r["prompt"] + " " + r["target"]


def corpus(seed: int, n_train: int = 120, n_test: int = 30, prefix: str = "w") -> tuple[list[dict], list[dict]]:
    """Random 150-word notes over one vocabulary, every note its own subject."""
    rng = random.Random(seed)
    words = vocab(prefix)
    train = [row(i, note_words(rng, words)) for i in range(n_train)]
    test = [row(10_000 + i, note_words(rng, words)) for i in range(n_test)]
    return train, test


# ---------------------------------------------------------------------------------------------
# What the audit measures.


@pytest.mark.parametrize("k", [1, 5])
def test_planted_exact_and_near_duplicates_are_found(k):
    train, test = corpus(seed=k)
    rng = random.Random(100 + k)
    for r in test[:k]:  # exact copies, under a train subject
        train.append(row(50_000 + len(train), text(r).split(), subject=7))
    for r in test[k:2 * k]:  # 2 of ~150 words changed: word-5-shingle Jaccard ≈ 0.87
        words = text(r).split()
        for p in rng.sample(range(len(words)), 2):
            words[p] = "edited"
        train.append(row(50_000 + len(train), words, subject=7))

    m = audit(train, test, AuditParams())

    assert m["exact_dup_test_in_train"] == k
    assert m["exact_dup_test_in_train_rate"] == round(k / len(test), 6)
    assert m["near_dup_test_in_train"] >= 2 * k  # the exact copies are near-duplicates too
    assert m["near_dup_test_in_train"] == 2 * k  # and nothing else is: random notes share no 5-gram runs
    assert m["target_in_train"] >= k
    assert 0 < m["ngram13_containment"] < 1
    assert m["subject_overlap"] == 0  # planted copies carry a train subject


def test_disjoint_sets_show_no_leakage():
    train, _ = corpus(seed=1, prefix="a")
    _, test = corpus(seed=2, prefix="b")
    m = audit(train, test, AuditParams(), val_rows=test[:5])
    assert set(m) == TEST_KEYS | {"val_vs_train"}
    for key in TEST_KEYS - {"n_train", "n_test", "n_test_subjects", "n_test_admissions"}:
        assert m[key] == 0, key
    assert m["ngram13_containment"] == 0.0
    assert all(v == 0 for k, v in m["val_vs_train"].items() if not k.startswith("n_"))


def test_containment_is_one_when_train_holds_every_test_note():
    train, test = corpus(seed=3)
    m = audit(train + test, test, AuditParams())
    assert m["ngram13_containment"] == 1.0
    n = len(test)
    assert m["exact_dup_test_in_train"] == m["target_in_train"] == m["near_dup_test_in_train"] == n
    assert m["subject_overlap"] == n and m["subject_overlap_rate"] == 1.0


def test_subject_and_admission_overlap_are_counted():
    rng = random.Random(4)
    words = vocab("s")
    test = [row(i, note_words(rng, words), subject=s, hadm=h)
            for i, (s, h) in enumerate([(1, 10), (2, 11), (3, 12), (4, None), (4, None)])]
    train = [row(100 + i, note_words(rng, words), subject=s, hadm=h)
             for i, (s, h) in enumerate([(3, 11), (4, 99), (5, None)])]
    m = audit(train, test, AuditParams())
    assert (m["n_test_subjects"], m["subject_overlap"], m["subject_overlap_rate"]) == (4, 2, 0.5)
    assert (m["n_test_admissions"], m["admission_overlap"], m["admission_overlap_rate"]) == (3, 1, round(1 / 3, 6))


def test_target_in_train_is_a_verbatim_substring_search():
    rng = random.Random(5)
    words = vocab("t")
    prompt = " ".join(note_words(rng, words, 20))
    inside = note_words(rng, words, 30)
    mid = note_words(rng, words, 6)  # shorter than ngram + 2 words: a single anchor
    test = [
        {"prompt": prompt, "target": " ".join(["ain"] + inside + ["ok"]), "subject_id": 1},  # in train inside words
        {"prompt": prompt, "target": " ".join(inside).upper(), "subject_id": 2},  # only a case-changed copy in train
        {"prompt": prompt, "target": " ".join(reversed(inside)), "subject_id": 3},  # same words, other order
        {"prompt": prompt, "target": "stable overnight", "subject_id": 4},  # 2 words, present
        {"prompt": prompt, "target": "unseen", "subject_id": 5},  # 1 word, absent
        {"prompt": prompt, "target": " ".join(["ain"] + mid + ["ok"]), "subject_id": 6},  # present, inside words
        {"prompt": prompt, "target": "", "subject_id": 7},  # empty targets never count
    ]
    train_text = (" ".join(note_words(rng, words, 40)) + " pain " + " ".join(inside) + " okay,"
                  + " pt stable overnightly. " + "rain " + " ".join(mid) + " oky")
    train = [{"prompt": train_text, "target": "end", "subject_id": 100}]
    m = audit(train, test, AuditParams())
    assert m["target_in_train"] == 3  # notes 1, 4 and 6
    assert m["exact_dup_test_in_train"] == 0


def test_empty_splits_and_notes_give_zeros_not_errors():
    m = audit([], [], AuditParams(), val_rows=[])
    assert m["n_test"] == m["val_vs_train"]["n_val"] == 0 and m["subject_overlap_rate"] == 0.0
    blank = [{"prompt": "", "target": "", "subject_id": 1}, {"prompt": "a", "target": "", "subject_id": 2}]
    m = audit(blank, blank, AuditParams())
    assert m["exact_dup_test_in_train"] == 2
    assert m["target_in_train"] == 0  # empty targets never count
    assert m["near_dup_test_in_train"] == 1  # the wordless note has no shingles


def test_val_is_audited_against_train_under_its_own_keys():
    train, test = corpus(seed=6)
    val = train[:4]
    m = audit(train, test, AuditParams(), val_rows=val)["val_vs_train"]
    assert m["n_val"] == 4
    assert m["exact_dup_val_in_train"] == m["near_dup_val_in_train"] == m["subject_overlap"] == 4
    assert m["ngram13_containment"] == 1.0
    assert not [k for k in m if "test" in k]


def test_audit_is_deterministic():
    train, test = corpus(seed=8)
    train += test[:3]
    cfg = AuditParams()
    assert audit(train, test, cfg, val_rows=test[:5]) == audit(list(train), list(test), cfg, val_rows=test[:5])


def test_results_do_not_depend_on_the_batch_size(monkeypatch):
    train, test = corpus(seed=17, n_train=60, n_test=25)
    rng = random.Random(17)
    for r in test[10:14]:  # in later batches once the batch size is 7
        words = text(r).split()
        words[rng.randrange(len(words))] = "edited"
        train.append(row(70_000 + len(train), words))
    train.append(dict(test[20]))
    expected = audit(train, test, AuditParams(), val_rows=test[9:])
    assert expected["near_dup_test_in_train"] == 5
    monkeypatch.setattr("notelm.privacy.audit._BATCH_NOTES", 7)
    assert audit(train, test, AuditParams(), val_rows=test[9:]) == expected


def test_minhash_signatures_equal_datasketch():
    cfg = AuditParams(num_perm=64, seed=3)
    feat = _Featurizer(cfg)
    texts = ["Pt alert and oriented x3, follows commands, MAE. HR 80s NSR, BP stable.", "two words", "x"]
    batch = feat(texts)
    sigs = feat._signatures(batch.shingles, batch.shingle_off[:-1], batch.shingle_off[1:])
    for i in range(len(texts)):
        shingles = batch.shingles[batch.shingle_off[i]:batch.shingle_off[i + 1]]
        reference = MinHash(num_perm=64, seed=3, hashfunc=lambda v: v)
        reference.update_batch([int(v) & 0xFFFFFFFF for v in shingles])
        assert np.array_equal(sigs[i], reference.hashvalues), i


@pytest.mark.parametrize("num_perm", [16, 128, 256])
@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9, 1.0])
def test_lsh_bands_reach_the_recall_target(threshold, num_perm):
    b, r = lsh_bands(threshold, num_perm)
    assert b >= 2 and b * r <= num_perm
    assert 1 - (1 - threshold**r) ** b >= 0.98


def _shingles(words: list[str], k: int) -> set[tuple[str, ...]]:
    if 0 < len(words) < k:
        return {tuple(words)}
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def _words(s: str) -> list[str]:
    return re.findall(r"\w+", s.lower())


notes = st.lists(st.sampled_from(["a", "b", "ab", "ba", "B", "a.", "b,"]), min_size=0, max_size=24).map(" ".join)
examples = st.lists(st.tuples(notes, notes, st.integers(0, 4)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(train=examples, test=examples, ngram=st.integers(1, 5))
def test_audit_agrees_with_brute_force(train, test, ngram):
    """Exact duplicates, verbatim targets and containment are exact; near-duplicates are never false."""
    def rows(items):
        return [{"prompt": p, "target": t, "subject_id": s} for p, t, s in items]

    cfg = AuditParams(ngram=ngram, shingle=2, num_perm=32, minhash_threshold=0.5)
    m = audit(rows(train), rows(test), cfg)
    norm = [" ".join(f"{p} {t}".split()) for p, t, _ in train]
    test_norm = [(" ".join(f"{p} {t}".split()), " ".join(t.split())) for p, t, _ in test]
    assert m["exact_dup_test_in_train"] == sum(full in norm for full, _ in test_norm)
    assert m["target_in_train"] == sum(bool(tgt) and any(tgt in n for n in norm) for _, tgt in test_norm)

    def grams(s):
        w = _words(s)
        return {tuple(w[i:i + ngram]) for i in range(len(w) - ngram + 1)}

    test_grams = set().union(*(grams(full) for full, _ in test_norm))
    train_grams = set().union(*(grams(n) for n in norm))
    expected = len(test_grams & train_grams) / len(test_grams) if test_grams else 0.0
    assert m["ngram{}_containment".format(ngram)] == round(expected, 6)

    def jaccard(a, b):
        return len(a & b) / len(a | b) if a | b else 0.0

    near = sum(any(jaccard(_shingles(_words(full), 2), _shingles(_words(n), 2)) >= 0.5 for n in norm)
               for full, _ in test_norm)
    assert m["near_dup_test_in_train"] <= near


def test_bad_row_names_split_and_row():
    train, test = corpus(seed=15, n_train=3, n_test=3)
    del test[1]["target"]
    with pytest.raises(NoteLMError, match=r"test row 2 \(note_id '10001'\): missing field 'target'"):
        audit(train, test, AuditParams())
