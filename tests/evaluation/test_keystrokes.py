"""notelm.evaluation.keystrokes: the simulated nurse's keystrokes on references a proposer knows, never matches, or half knows."""

from __future__ import annotations

import pytest

from notelm.evaluation.keystrokes import characters, simulate, summary

WORDS = "Pt alert and oriented x3, follows commands. HR 80s NSR".split()


def test_a_proposer_that_knows_the_note_word_for_word_reaches_the_ceiling():
    typing = simulate(WORDS, lambda i: WORDS[i:i + 5], max_words=5)
    assert typing.keystrokes == typing.minimum == 2 and typing.accepted == typing.shown == 2
    got = summary([typing])
    assert got["keystroke_savings"] == got["ceiling"] == pytest.approx(1 - 2 / characters(WORDS))
    assert got["accept_rate"] == 1 and got["next_word_accuracy"] == 1 and got["mean_accepted_words"] == 5


def test_a_proposer_that_never_matches_saves_nothing_and_every_character_is_typed():
    typing = simulate(WORDS, lambda i: ["wrong", "words"], max_words=5)
    assert typing.keystrokes == typing.characters == sum(len(w) + 1 for w in WORDS)  # each word and its space
    assert typing.reached == typing.shown == len(WORDS) and typing.accepted == 0
    assert summary([typing])["keystroke_savings"] == 0 and summary([typing])["accept_rate"] == 0


def test_a_correct_prefix_gets_partial_credit():
    # right for the first two words, then wrong: accept two with one Tab, then type the rest
    proposals = {0: ["Pt", "alert", "but", "drowsy"]}
    typing = simulate(WORDS, lambda i: proposals.get(i, []), max_words=5)
    rest = sum(len(w) + 1 for w in WORDS[2:])
    assert typing.keystrokes == 1 + rest and typing.accepted_words == 2 and typing.shown == 1
    assert 0 < summary([typing])["keystroke_savings"] < summary([simulate(WORDS, lambda i: WORDS[i:i + 5], 5)])["ceiling"]


def test_no_proposal_is_not_shown_and_a_longer_one_is_cut_at_max_words():
    typing = simulate(WORDS, lambda i: WORDS[i:], max_words=3)
    assert typing.accepted_words == len(WORDS) and typing.keystrokes == 4 == typing.minimum
    assert simulate([], lambda i: [], 5).keystrokes == 0
    assert summary([])["accept_rate"] != summary([])["accept_rate"]  # NaN: nothing shown


def test_next_word_accuracy_counts_every_boundary_whether_the_nurse_reached_it_or_not():
    # right at boundary 0 only, with the whole note: the nurse accepts it all and reaches one boundary
    whole = simulate(WORDS, lambda i: WORDS[i:] if i == 0 else ["wrong"], max_words=len(WORDS))
    # right at every boundary, one word at a time: the nurse reaches them all
    each = simulate(WORDS, lambda i: WORDS[i:i + 1], max_words=len(WORDS))
    assert whole.reached == 1 and each.reached == len(WORDS)
    assert whole.boundaries == each.boundaries == len(WORDS)
    assert summary([whole])["next_word_accuracy"] == pytest.approx(1 / len(WORDS))  # not 1/1 of the reached
    assert summary([each])["next_word_accuracy"] == 1
