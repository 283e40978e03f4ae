"""Tests for cleaning a note and cutting it (src/notelm/data/notes.py): de-identification, filters, prompt and target."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notelm.config.data import DataParams
from notelm.config.names import HISTORY_MARK, NOTE_MARK
from notelm.data.mimic import Note
from notelm.data.notes import clean_text, count_words, cut, deid_token, filter_reason, history_prefix, make_example

# --- cleaning -----------------------------------------------------------------------------------------


def test_deid_modes():
    text = "Pt seen by [**First Name8 (NamePattern2) 1234**] at [**Hospital1 18**] on [**2101-10-20**].\n\nCall  [**Telephone/Fax (3) 555**]."
    keep = clean_text(text, DataParams(deid="keep"))
    assert keep == "Pt seen by [**First Name8 (NamePattern2) 1234**] at [**Hospital1 18**] on [**2101-10-20**]. Call [**Telephone/Fax (3) 555**]."
    assert clean_text(text, DataParams(deid="normalize")) == "Pt seen by [**NAME**] at [**HOSPITAL**] on [**DATE**]. Call [**PHONE**]."
    assert clean_text(text, DataParams(deid="remove")) == "Pt seen by at on . Call ."
    raw = clean_text(text, DataParams(deid="normalize", normalize_whitespace=False))
    assert raw == "Pt seen by [**NAME**] at [**HOSPITAL**] on [**DATE**].\n\nCall  [**PHONE**]."


@pytest.mark.parametrize(
    "content, token",
    [
        ("Known lastname 1234", "NAME"),
        ("Doctor Last Name ", "NAME"),
        ("Name Initial (PRE) 12", "NAME"),
        ("Hospital Unit Name 10", "HOSPITAL"),
        ("Hospital1 18", "HOSPITAL"),
        ("2151-7-16", "DATE"),
        ("7-16", "DATE"),
        ("Month (only) 51", "DATE"),
        ("Year (4 digits) ", "DATE"),
        ("Age over 90 ", "AGE"),
        ("Location (un) 1234", "LOCATION"),
        ("Street Address(2) 12", "LOCATION"),
        ("Pager number 123", "PHONE"),
        ("MD Number(1) 123", "ID"),
        ("Medical Record Number ", "ID"),
        ("something else", "DEID"),
    ],
)
def test_deid_token_types(content, token):
    assert deid_token(content) == f"[**{token}**]"


def test_count_words_with_and_without_normalised_whitespace():
    assert count_words("", DataParams()) == 0
    assert count_words("a b c", DataParams()) == 3
    assert count_words("a\n\nb  c", DataParams(normalize_whitespace=False)) == 3


@pytest.mark.parametrize(
    "text, n_words, reason",
    [("x" * 9, 4, "too_few_chars"), ("x" * 31, 40, "too_many_chars"), ("x" * 20, 3, "too_few_words"),
     ("x" * 20, 6, "too_many_words"), ("x" * 20, 4, None)],
)
def test_filter_reason_names_the_first_length_filter_failed(text, n_words, reason):
    cfg = DataParams(min_chars=10, max_chars=30, min_words=4, max_words=5)
    assert filter_reason(text, n_words, cfg) == reason


# --- prompt and target ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_words, fraction, cap, expected", [(2, 0.01, None, (1, 2)), (2, 0.99, None, (1, 2)),
                                                              (10, 0.5, None, (5, 10)), (100, 0.5, 48, (50, 98))])
def test_cut_leaves_at_least_one_word_on_each_side(n_words, fraction, cap, expected):
    assert cut(n_words, DataParams(prompt_fraction=fraction, max_target_words=cap)) == expected


def test_history_prefix_marks_each_earlier_note_and_keeps_the_last_words():
    assert history_prefix([], 10) == ""
    assert history_prefix(["a b", "c d"], 100) == f"{HISTORY_MARK} a b {HISTORY_MARK} c d {NOTE_MARK} "
    assert history_prefix(["a b", "c d"], 2) == f"c d {NOTE_MARK} "


def _note(text: str) -> Note:
    return Note("1", 1, None, "Nursing", "2101-01-01", None, text, False)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8), min_size=2, max_size=200),
    prompt_fraction=st.floats(0.01, 0.99),
)
def test_prompt_and_target_reconstruct_the_cleaned_note(words, prompt_fraction):
    cfg = DataParams(prompt_fraction=prompt_fraction, max_target_words=None)
    text = clean_text(" ".join(words), cfg)
    n = len(text.split())
    if n < 2:
        return
    ex = make_example(_note(text), cfg)
    assert ex["prompt"] and ex["target"]
    assert ex["prompt"] + " " + ex["target"] == text
    assert text[len(ex["prompt"])] == " "  # the prompt ends at a word boundary
    assert len(ex["prompt"].split()) == min(max(1, int(n * prompt_fraction)), n - 1)


def test_target_is_capped_and_follows_the_prompt():
    text = " ".join(f"w{i}" for i in range(100))
    ex = make_example(_note(text), DataParams(max_target_words=64))
    assert ex["prompt"] == " ".join(f"w{i}" for i in range(50))
    assert ex["target"] == " ".join(f"w{i}" for i in range(50, 100))
    ex = make_example(_note(text), DataParams(max_target_words=10, prompt_fraction=0.25))
    assert ex["target"] == " ".join(f"w{i}" for i in range(25, 35))
    assert text.startswith(ex["prompt"] + " " + ex["target"])


def test_example_without_whitespace_normalisation_keeps_layout():
    cfg = DataParams(normalize_whitespace=False, max_target_words=None)
    text = clean_text("  Neuro: intact\nResp:  clear\n\nPlan: monitor  ", cfg)
    ex = make_example(_note(text), cfg)
    assert ex["prompt"] == "Neuro: intact\nResp:"
    assert ex["target"] == "clear\n\nPlan: monitor"
    assert text == ex["prompt"] + "  " + ex["target"]
