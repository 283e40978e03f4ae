"""Cleaning a note and cutting it into prompt and target.

`strip_controls` removes control characters (NUL and the like) that are never note text; `clean_text`
applies `data.deid` (MIMIC's `[**...**]` placeholders kept, typed by `deid_token`, or removed) and whitespace
normalisation; `filter_reason` names the length filter a cleaned note fails; `make_example`
cuts a cleaned note at `data.prompt_fraction` of its words into prompt and target (at most
`data.max_target_words`), led by the patient's earlier notes (`history_prefix`).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from notelm.config.data import DataParams
from notelm.config.names import HISTORY_MARK, NOTE_MARK
from notelm.data.mimic import Note

_DEID = re.compile(r"\[\*\*(.*?)\*\*\]")
# (type, what its placeholder's inside matches), checked in order: the first match names the type
_DEID_TYPES = [(kind, re.compile(pattern)) for kind, pattern in (
    ("DATE", r"^[\d\s/-]+$|month|year|\bday|date|holiday"),
    ("AGE", r"\bage\b"),
    ("PHONE", r"telephone|fax|phone|pager"),
    ("HOSPITAL", r"hospital|ward"),
    ("NAME", r"name|initial"),
    ("ID", r"number|identifier|record|serial|e-mail|url|contact|\bid\b"),
    ("LOCATION", r"location|address|street|state|country|city|university|college|company"),
)]
_WORD = re.compile(r"\S+")
# C0 controls but tab, newline and carriage return (whitespace cleaning handles those), DEL and the C1 controls:
# a NUL or stray escape from an export is no note text, and would pass into prompts, targets and the JSON lines.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What strip_controls changes, counted per cleaned note in metrics/detail/data.json (always present).
CLEANING = ("control_char_notes", "control_chars_removed")


@functools.lru_cache(maxsize=1 << 16)
def deid_token(content: str) -> str:
    """The type token for one MIMIC placeholder's inside, e.g. 'Known lastname 123' → '[**NAME**]'.

    Types, checked in this order: DATE (digits with - or /, or a month/day/year/date/holiday
    label), AGE, PHONE (telephone, fax, pager), HOSPITAL (hospital, ward), NAME (name,
    initial), ID (number, identifier, record, e-mail, url, contact), LOCATION (location,
    address, street, state, country, university, company); anything else → [**DEID**].
    """
    c = content.lower()
    kind = next((kind for kind, pattern in _DEID_TYPES if pattern.search(c)), "DEID")
    return f"[**{kind}**]"


def strip_controls(text: str) -> tuple[str, int]:
    """(`text` without control characters, how many there were). A control that Python counts as whitespace
    (vertical tab, form feed, \\x1c-\\x1f, NEL) becomes a space, so the words it separated stay apart; any other
    (NUL, escape, DEL, ...) is deleted. Tabs, newlines and carriage returns are kept for `clean_text`."""
    return _CONTROL.subn(_control_gap, text)


def _control_gap(match: re.Match) -> str:
    return " " if match.group().isspace() else ""


def clean_text(text: str, cfg: DataParams) -> str:
    """Apply the de-identification mode and whitespace normalisation; always strip both ends.

    deid: `keep` leaves `[**...**]` placeholders as they are; `normalize` replaces each with
    its type token (see `deid_token`), so the arbitrary surrogate numbers disappear;
    `remove` deletes them. normalize_whitespace collapses every run of whitespace
    (newlines included, as the original study did) into one space.
    """
    if cfg.deid != "keep" and "[**" in text:
        if cfg.deid == "normalize":
            text = _DEID.sub(lambda m: deid_token(m.group(1)), text)
        else:
            text = _DEID.sub("", text)
    if cfg.normalize_whitespace:
        return " ".join(text.split())
    return text.strip()


def count_words(text: str, cfg: DataParams) -> int:
    """Number of whitespace-separated words in a cleaned text."""
    if cfg.normalize_whitespace:
        return text.count(" ") + 1 if text else 0
    return len(text.split())


def cut(n_words: int, cfg: DataParams) -> tuple[int, int]:
    """(words in the prompt, word index where the target ends) for a note of `n_words` ≥ 2 words."""
    prompt = min(max(1, math.floor(n_words * cfg.prompt_fraction)), n_words - 1)
    end = n_words if cfg.max_target_words is None else min(n_words, prompt + cfg.max_target_words)
    return prompt, end


def history_prefix(earlier: list[str], budget: int) -> str:
    """The text put before a note's prompt: its patient's earlier notes (oldest first), each after
    `[PREVIOUS NOTE]`, cut to their last `budget` words, then `[NOTE]`; empty without earlier notes."""
    if not earlier:
        return ""
    words = " ".join(f"{HISTORY_MARK} {text}" for text in earlier).split()
    return " ".join(words[-budget:]) + f" {NOTE_MARK} "


def make_example(note: Note, cfg: DataParams, earlier: list[str] | None = None, rest: bool = False) -> dict[str, Any]:
    """Turn a note whose `text` is already cleaned (`clean_text`) and has ≥ 2 words into an example.

    prompt = the first `prompt_fraction` of its words (at least one, never all), ending at a word
    boundary; target = the following words, at most `max_target_words`. With whitespace
    normalised, `prompt + " " + target` is the cleaned note up to the target cap; without,
    the original whitespace is kept inside each part and the run between them is dropped.
    `earlier` (the texts of the patient's most recent earlier notes of the same split) go before the
    prompt (`history_prefix`), as the chart a nurse has open. With `rest`, the example also holds `rest`: the
    whole note after the prompt, uncapped (test rows: the study's reference, and the chart for later notes).
    """
    text = note.text
    if cfg.normalize_whitespace:
        words = text.split(" ")
        p, end = cut(len(words), cfg)
        prompt, target, after = " ".join(words[:p]), " ".join(words[p:end]), " ".join(words[p:])
    else:
        spans = [m.span() for m in _WORD.finditer(text)]
        p, end = cut(len(spans), cfg)
        prompt, target, after = text[: spans[p - 1][1]], text[spans[p][0] : spans[end - 1][1]], text[spans[p][0]:]
    example = {
        "note_id": note.note_id,
        "subject_id": note.subject_id,
        "hadm_id": note.hadm_id,
        "category": note.category,
        "chartdate": note.chartdate,
        "charttime": note.charttime,
        "prompt": history_prefix(earlier or [], cfg.history_words) + prompt,
        "target": target,
    }
    return {**example, "rest": after.rstrip()} if rest else example


def filter_reason(cleaned: str, n_words: int, cfg: DataParams) -> str | None:
    """The first length filter `cleaned` fails, or None."""
    if len(cleaned) < cfg.min_chars:
        return "too_few_chars"
    if cfg.max_chars is not None and len(cleaned) > cfg.max_chars:
        return "too_many_chars"
    if n_words < cfg.min_words:
        return "too_few_words"
    if cfg.max_words is not None and n_words > cfg.max_words:
        return "too_many_words"
    return None
