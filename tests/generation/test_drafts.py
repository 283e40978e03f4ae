"""notelm.generation.drafts: prompt lookup copies what followed the text's last words before; a word proposer
becomes a Drafter over the part of the text it reads."""

from __future__ import annotations

from notelm.generation.drafts import lookup, prompt_lookup, words_drafter


def test_prompt_lookup_copies_what_followed_the_last_words_before():
    words = "HR 80s NSR, BP stable. HR 80s".split()
    assert lookup(words, 2) == ["NSR,", "BP"]
    assert lookup("BP stable. HR 90s".split(), 2) == []  # never seen before
    assert lookup("a b c b".split(), 3, context=1) == ["c", "b"]  # backs off to one word
    assert prompt_lookup(1)("pt calm. pt") == "calm."


def test_words_drafter_reads_its_view_of_the_text():
    drafter = words_drafter(lambda words: [w.upper() for w in words[-2:]], view=lambda text: text.split("|")[-1])
    assert drafter("chart words | pt calm") == "PT CALM"
    assert words_drafter(lambda words: [])("anything") == ""
