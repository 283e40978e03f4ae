"""notelm.evaluation.choose: the expected-saving rule on constructed candidates, the threshold, the oracle, and the
tuning that reads only the notes it is given."""

from __future__ import annotations

import pytest

from notelm.evaluation.choose import THRESHOLDS, Candidate, choose, expected_saving, oracle, tune, typed


def test_expected_saving_counts_each_word_with_its_space_less_the_tab():
    # certain words: all of them accepted, "HR" + "80s" with their spaces = 3 + 4, less one Tab
    assert expected_saving(["HR", "80s"], [1.0, 1.0]) == 6.0
    # the first word sure, the second a coin toss: 3 + 0.5 × 4 − 1
    assert expected_saving(["HR", "80s"], [1.0, 0.5]) == 4.0
    assert expected_saving([], []) == 0.0


def test_the_rule_picks_the_most_keystrokes_expected_not_the_likeliest_first_word():
    short = Candidate("finetuned", ["BP"], [0.9])  # 0.9 × 3 − 0.9 = 1.8
    long = Candidate("chart_copy", ["BP", "stable,", "afebrile."], [0.6, 0.5, 0.4])  # 1.8 + 4 + 4 − 0.6 = 9.2
    assert expected_saving(long.words, long.probs) == pytest.approx(0.6 * 3 + 0.5 * 8 + 0.4 * 10 - 0.6)
    assert choose([short, long], threshold=0.0) is long
    assert choose([short, long], threshold=9.0) is long
    assert choose([short, long], threshold=9.5) is None  # below the threshold nothing is shown
    assert choose([long, Candidate("ngram", long.words, long.probs)], 0.0).source == "chart_copy"  # first on a tie
    assert choose([], 0.0) is None


def test_the_oracle_takes_the_candidate_with_the_most_right_words():
    reference = "BP stable, afebrile. Pain controlled.".split()
    a, b = Candidate("a", ["BP", "stable,", "T"], [1, 1, 1]), Candidate("b", ["BP", "stable,", "afebrile."], [0, 0, 0])
    assert oracle([a, b], reference, 0) is b
    assert oracle([a], reference, 3) is None  # nothing right: nothing shown


def test_typing_with_choices_records_each_suggestions_source():
    words = "BP stable, afebrile.".split()
    cands = [[Candidate("chart_copy", words, [1.0, 1.0, 1.0])], [], []]
    typing, sources = typed((words, cands), lambda c, i: choose(c, 0.0), max_words=5)
    assert (typing.keystrokes, typing.accepted_words, sources) == (1, 3, ["chart_copy"])


def test_tune_returns_the_best_threshold_on_the_notes_it_is_given_and_the_larger_on_a_tie():
    words = "BP stable, afebrile.".split()
    sure = ([Candidate("chart_copy", words, [1.0, 1.0, 1.0])], [], [])  # expected 3 + 8 + 10 − 1 = 20
    threshold, curve = tune([(words, list(sure))], max_words=5)
    assert threshold == max(THRESHOLDS) and set(curve.values()) == {1 - 1 / 21}  # shown at every threshold
    wrong = ([Candidate("ngram", ["Pain", "controlled."], [0.9, 0.9])], [], [])  # expected about 14: never right
    right_but_unsure = [Candidate("chart_copy", words[1:], [0.1, 0.1])]  # expected about 1.9: right
    threshold, curve = tune([(words, [wrong[0], right_but_unsure, []])], max_words=5)
    assert threshold == 1.5 and curve["1.5"] > curve["2"]  # the largest threshold that still shows the right one
