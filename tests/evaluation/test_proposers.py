"""notelm.evaluation.proposers' drafters: the n-gram table first, the chart's aligned words, prompt lookup; the
history a text carries drafts as the chart does."""

from __future__ import annotations

from notelm.config.names import HISTORY_MARK, NOTE_MARK
from notelm.evaluation.proposers import NGram, drafters, history_drafter

CHART = "Pt alert and oriented x3. HR 80s NSR, BP stable. LS clear bilaterally."


def test_drafters_try_the_table_then_the_chart_then_prompt_lookup():
    ngram = NGram(["HR 80s NSR, BP stable."], order=3)
    table, chart, lookup = drafters(CHART.split(), ngram, k=3)
    assert table("Pt calm. HR 80s") == "NSR, BP stable."
    assert chart("Pt alert and oriented x3. HR 80s") == "NSR, BP stable."
    assert lookup("BP stable. HR 80s. BP") == "stable. HR 80s."
    assert len(drafters([], None, 3)) == 1  # no chart, no table: prompt lookup alone


def test_the_history_a_text_carries_drafts_as_the_chart():
    drafter = history_drafter(3)
    text = f"{HISTORY_MARK} {CHART} {NOTE_MARK} Pt alert and oriented x3. HR 80s"
    assert drafter(text) == "NSR, BP stable."
    assert drafter("Pt alert and oriented x3. HR 80s") == ""  # no history: no draft
