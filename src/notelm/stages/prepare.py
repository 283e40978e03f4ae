"""The `prepare` stage: raw MIMIC notes → cleaned, split prompt/target examples.

    python -m notelm.stages.prepare --raw data/raw/NOTEEVENTS.csv.gz --out data/prepared --metrics metrics/data.json


Reads MIMIC-III `NOTEEVENTS.csv(.gz)` or a MIMIC-IV-Note CSV (`discharge.csv`,
`radiology.csv`), keeps the configured categories, cleans the text, splits the
notes into train/val/test by patient (or admission, or note), subsamples train
only, and writes `data/prepared/{train,val,test}.jsonl`, `rejects.jsonl` and
`metrics/data.json`.

How it stays within memory on the full 4 GB NOTEEVENTS: the CSV is streamed
row by row; each kept note is turned into its JSON line at once and appended to
a spool file, and only a few integers per note (subject, admission, time,
offset, length, word counts) plus a 16-byte hash for de-duplication stay in
memory. Once every group is known, groups are assigned to splits and the lines
are copied from the spool into the sorted split files.

Why the `csv` module and not pandas' `read_csv(chunksize=...)`: on a 177 MB
multi-line sample both parse at ~200-300 MB/s (pandas C engine 0.54 s, csv
0.79 s), a small share of the stage's time, but pandas' C engine silently pads
a row with too few fields with NaN, reports a row with too many only as a
warning string without its content, and offers no row callback; the python
engine that does is several times slower. `csv.reader` hands over every
record with its true field count and line number, so every malformed row can
be counted and sampled, and it never aborts mid-file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import gzip
import hashlib
import json
import logging
import math
import os
import re
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from notelm import runner
from notelm.artifacts import (
    DATA_METRICS,
    HISTORY_MARK,
    NOTE_MARK,
    PREPARED_DIR,
    REJECTS_FILE,
    SPLITS,
    atomic_dir,
    split_path,
    write_json,
)
from notelm.errors import NoteLMError
from notelm.history import Recent
from notelm.params import DataParams, load_section
from notelm.scoring import rouge_scores

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`

# Every reason a raw row can be dropped, in the order rows are checked; each
# dropped row is counted once, under the first reason that applies. All keys
# are always present in metrics/data.json so `dvc metrics diff` stays stable.
MALFORMED = ("broken_quoting", "undecodable_bytes", "non_numeric_id", "unparsable_time")
FILTERED = (
    "category",
    "iserror",
    "blank_text",
    "too_few_chars",
    "too_many_chars",
    "too_few_words",
    "too_many_words",
    "duplicate",
)
REASONS = MALFORMED + FILTERED

# Column names (lower-cased) per supported schema: internal field → CSV column.
SCHEMAS: dict[str, dict[str, str]] = {
    "MIMIC-III NOTEEVENTS": {
        "note_id": "row_id",
        "subject_id": "subject_id",
        "hadm_id": "hadm_id",
        "chartdate": "chartdate",
        "charttime": "charttime",
        "category": "category",
        "iserror": "iserror",
        "text": "text",
    },
    "MIMIC-IV-Note": {
        "note_id": "note_id",
        "subject_id": "subject_id",
        "hadm_id": "hadm_id",
        "category": "note_type",
        "charttime": "charttime",
        "text": "text",
    },
}

# A record start inside a note's text means an unbalanced quote made the parser
# swallow the following record(s) into this one.
_EMBEDDED_RECORD = {
    "MIMIC-III NOTEEVENTS": re.compile(r"\n\d+,\d+,\d*,\d{4}-\d\d-\d\d,"),
    "MIMIC-IV-Note": re.compile(r"\n\d+-[A-Z]{2}-\d+,\d+,\d*,[A-Z]{2},"),
}

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
_FIELD_LIMIT = 1 << 26  # 64 MiB: far above any real note, low enough to bound a runaway quoted field


NOTE_FIELDS = ("note_id", "subject_id", "hadm_id", "category", "chartdate", "charttime", "text")


@dataclass(slots=True)
class Note:
    """One note, in the same shape whichever schema it was read from."""

    note_id: str
    subject_id: int
    hadm_id: int | None
    category: str  # stripped of surrounding whitespace (MIMIC-III has 'Physician ')
    chartdate: str  # YYYY-MM-DD
    charttime: str | None  # YYYY-MM-DD HH:MM:SS, or None where the source has no time
    text: str
    iserror: bool


@dataclass
class ReadStats:
    """Counts of rows read and dropped per reason, plus the first `rejects_sample` malformed rows per reason."""

    rejects_sample: int = 100
    rows_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    first: dict[str, tuple[int | None, str, list[str]]] = field(default_factory=dict)  # reason: (line, detail, row)

    def drop(self, reason: str, line: int | None = None, detail: str = "", row: list[str] | None = None) -> None:
        """Count one dropped row under `reason`; keep it as a sample if `row` is given and the quota allows."""
        self.dropped[reason] += 1
        if row is not None:
            self.first.setdefault(reason, (line, detail, row))
        if row is not None and self.dropped[reason] <= self.rejects_sample:
            self.rejects.append({"reason": reason, "line": line, "detail": detail, "fields": [_printable(v)[:300] for v in row]})


def _printable(value: str) -> str:
    """Undecodable bytes (kept as surrogate escapes) shown as `\\xNN` so the value can be written as UTF-8."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _open_text(path: Path, encoding: str = "utf-8"):
    """Open `path` as text in `encoding` (UTF-8 with or without a byte-order mark), gunzipping if it starts with the
    gzip magic; undecodable bytes become surrogate escapes."""
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    utf8 = codecs.lookup(encoding).name == "utf-8"
    kwargs = {"encoding": "utf-8-sig" if utf8 else encoding, "errors": "surrogateescape", "newline": ""}
    return gzip.open(path, "rt", **kwargs) if gz else path.open(**kwargs)


def _shown(schema: str, columns: list[str]) -> str:
    """Column names as the schema's files spell them (MIMIC-III upper case, MIMIC-IV lower case)."""
    return ", ".join(c.upper() if schema.startswith("MIMIC-III") else c for c in columns)


def _detect_schema(header: list[str], path: Path) -> tuple[str, dict[str, int]]:
    """Pick the schema whose columns the header holds; map each internal field to its column index (case-insensitive)."""
    position = {h.strip().lower(): i for i, h in enumerate(header)}
    best = max(SCHEMAS, key=lambda s: len(set(SCHEMAS[s].values()) & set(position)))
    missing = [c for c in SCHEMAS[best].values() if c not in position]
    if missing:
        other = next(s for s in SCHEMAS if s != best)
        raise NoteLMError(
            f"{path}: missing required column(s) {_shown(best, missing)} for the {best} schema "
            f"(found: {', '.join(h.strip() for h in header)}); a {other} file needs "
            f"{_shown(other, list(SCHEMAS[other].values()))}"
        )
    return best, {key: position[col] for key, col in SCHEMAS[best].items()}


def _to_int(value: str) -> int | None:
    """'123' or '123.0' → 123; anything else → None."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _parse_time(value: str) -> dt.datetime | None:
    """ISO date or date-time → datetime; None if it does not parse."""
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _parse_row(row: list[str], cols: dict[str, int], names: dict[str, str], schema: str) -> Note | tuple[str, str]:
    """Validate one CSV record; return a Note, or (reason, detail) for a malformed row (`names`: column names for messages)."""
    values = {key: row[i] for key, i in cols.items()}
    for key, value in values.items():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "undecodable_bytes", f"undecodable bytes in {names[key]}"
    note_id = values["note_id"].strip()
    if not note_id or (schema.startswith("MIMIC-III") and _to_int(note_id) is None):
        return "non_numeric_id", f"{names['note_id']}={note_id!r} is not a valid id"
    subject_id = _to_int(values["subject_id"])
    if subject_id is None:
        return "non_numeric_id", f"{names['subject_id']}={values['subject_id']!r} is not an integer"
    hadm_id = None
    if values["hadm_id"].strip():
        hadm_id = _to_int(values["hadm_id"])
        if hadm_id is None:
            return "non_numeric_id", f"{names['hadm_id']}={values['hadm_id']!r} is not an integer"

    charttime = None
    if values["charttime"].strip():
        parsed = _parse_time(values["charttime"])
        if parsed is None:
            return "unparsable_time", f"{names['charttime']}={values['charttime']!r} is not a date-time"
        charttime = parsed.isoformat(sep=" ", timespec="seconds")
    if "chartdate" in values:
        parsed = _parse_time(values["chartdate"])
        if parsed is None:
            return "unparsable_time", f"{names['chartdate']}={values['chartdate']!r} is not a date"
        chartdate = parsed.date().isoformat()
    elif charttime is not None:
        chartdate = charttime[:10]
    else:
        return "unparsable_time", f"{names['charttime']} is empty"

    text = values["text"]
    if _EMBEDDED_RECORD[schema].search(text):
        return "broken_quoting", "the text holds the start of another record (unbalanced quotes)"
    iserror = values.get("iserror", "").strip() not in ("", "0", "0.0")
    return Note(note_id, subject_id, hadm_id, values["category"].strip(), chartdate, charttime, text, iserror)


def read_notes(path: str | Path, stats: ReadStats | None = None, encoding: str = "utf-8") -> Iterator[Note]:
    """Stream the notes of a MIMIC-III or MIMIC-IV-Note CSV (plain or gzip) in `encoding`, one record at a time.

    Every data record is counted in `stats.rows_read`; a malformed one (wrong field count,
    undecodable bytes, non-numeric id, unparsable time) is not yielded but counted under its
    reason in `stats.dropped` and sampled in `stats.rejects`. Raises NoteLMError for a missing,
    empty, header-only or unreadable file, or a header lacking required columns.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    if not path.is_file():
        raise NoteLMError(
            f"{path}: raw notes file not found; run `dvc repro synthesize` to build the synthetic corpus, "
            f"or set data.raw_path in params.yaml to your NOTEEVENTS.csv(.gz) or MIMIC-IV-Note CSV"
        )
    if path.stat().st_size == 0:
        raise NoteLMError(f"{path}: the file is empty; expected a CSV header and note rows")
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    try:
        with _open_text(path, encoding) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise NoteLMError(f"{path}: the file is empty (no header row); expected a CSV header and note rows")
            schema, cols = _detect_schema(header, path)
            names = {key: header[i].strip() for key, i in cols.items()}
            ncols = len(header)
            line = reader.line_num + 1  # first physical line of the next record
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    stats.rows_read += 1
                    stats.drop("broken_quoting", line, str(exc), [])
                    line = reader.line_num + 1
                    continue
                start, line = line, reader.line_num + 1
                if not row:  # a blank physical line holds no record
                    continue
                stats.rows_read += 1
                if len(row) != ncols:
                    stats.drop("broken_quoting", start, f"expected {ncols} fields, got {len(row)}", row)
                    continue
                parsed = _parse_row(row, cols, names, schema)
                if isinstance(parsed, Note):
                    yield parsed
                else:
                    stats.drop(parsed[0], start, parsed[1], row)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise NoteLMError(
            f"{path}: could not read past data row {stats.rows_read} ({exc}); the file looks truncated or corrupt"
        ) from exc
    if stats.rows_read == 0:
        raise NoteLMError(f"{path}: the file has a header but no data rows")


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


def _cut(n_words: int, cfg: DataParams) -> tuple[int, int]:
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


def make_example(note: Note, cfg: DataParams, earlier: list[str] | None = None) -> dict[str, Any]:
    """Turn a note whose `text` is already cleaned (`clean_text`) and has ≥ 2 words into an example.

    prompt = the first `prompt_fraction` of its words (at least one, never all), ending at a word
    boundary; target = the following words, at most `max_target_words`. With whitespace
    normalised, `prompt + " " + target` is the cleaned note up to the target cap; without,
    the original whitespace is kept inside each part and the run between them is dropped.
    `earlier` (the texts of the patient's most recent earlier notes of the same split) go before the
    prompt (`history_prefix`), as the chart a nurse has open.
    """
    text = note.text
    if cfg.normalize_whitespace:
        words = text.split(" ")
        p, end = _cut(len(words), cfg)
        prompt, target = " ".join(words[:p]), " ".join(words[p:end])
    else:
        spans = [m.span() for m in _WORD.finditer(text)]
        p, end = _cut(len(spans), cfg)
        prompt, target = text[: spans[p - 1][1]], text[spans[p][0] : spans[end - 1][1]]
    return {
        "note_id": note.note_id,
        "subject_id": note.subject_id,
        "hadm_id": note.hadm_id,
        "category": note.category,
        "chartdate": note.chartdate,
        "charttime": note.charttime,
        "prompt": history_prefix(earlier or [], cfg.history_words) + prompt,
        "target": target,
    }


def _split_counts(n: int, ratios: list[float]) -> tuple[int, int, int]:
    """Groups per split: val and test rounded from their shares (at least 1 each when positive and n ≥ 3)."""
    counts = []
    for share in ratios[1:]:
        k = int(n * share + 0.5)
        if share > 0 and k == 0 and n >= 3:
            k = 1
        counts.append(k)
    n_val, n_test = counts
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return n - n_val - n_test, n_val, n_test


def split_groups(keys: np.ndarray, ratios: list[float], seed: int) -> np.ndarray:
    """Assign each element's group to a split (0 train, 1 val, 2 test); returns one code per element.

    The distinct keys are sorted and shuffled by a permutation seeded with `seed`; the first
    share goes to train, the next to val, the rest to test. Every element of a group gets the
    same code, so no group is in two splits, and the result depends only on the set of keys,
    the ratios and the seed.
    """
    keys = np.asarray(keys, dtype=np.int64)
    uniq = np.unique(keys)
    n_train, n_val, _ = _split_counts(len(uniq), ratios)
    order = np.random.default_rng([seed, 0]).permutation(len(uniq))
    code = np.full(len(uniq), 2, dtype=np.int8)
    code[order[:n_train]] = 0
    code[order[n_train : n_train + n_val]] = 1
    return code[np.searchsorted(uniq, keys)]


def subsample_train(n_train: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of the train notes kept by `fraction` (share if ≤ 1, else a count), seeded.

    Positions come from one seeded permutation of 0..n_train-1, so a smaller fraction keeps
    a subset of what a larger one keeps.
    """
    if fraction > 1:
        k = min(int(fraction), n_train)
    elif fraction == 1 or n_train == 0:
        k = n_train
    else:
        k = max(1, int(n_train * fraction + 0.5))
    order = np.random.default_rng([seed, 1]).permutation(n_train)
    return np.sort(order[:k])


def _group_keys(split_by: str, subject: np.ndarray, hadm: np.ndarray) -> np.ndarray:
    """One int64 group key per note: its subject, its admission (notes without one: a per-subject group), or itself."""
    if split_by == "subject":
        return subject
    if split_by == "admission":
        return np.where(hadm >= 0, hadm, -subject - 1)  # negative keys never collide with admission ids
    return np.arange(len(subject), dtype=np.int64)


def _filter_reason(cleaned: str, n_words: int, cfg: DataParams) -> str | None:
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


def _time_key(note: Note) -> int:
    """YYYYMMDDhhmmss as an int for ordering a patient's notes (no time → start of the day)."""
    stamp = note.charttime or f"{note.chartdate} 00:00:00"
    return int(stamp[0:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16] + stamp[17:19])


def _split_summary(idx: np.ndarray, subject: np.ndarray, hadm: np.ndarray, words: np.ndarray, target_words: np.ndarray) -> dict[str, Any]:
    """Notes, patients, admissions and mean word counts of one split."""
    admissions = hadm[idx]
    return {
        "notes": int(len(idx)),
        "patients": int(len(np.unique(subject[idx]))),
        "admissions": int(len(np.unique(admissions[admissions >= 0]))),
        "mean_words": round(float(words[idx].mean()), 2) if len(idx) else 0.0,
        "mean_target_words": round(float(target_words[idx].mean()), 2) if len(idx) else 0.0,
    }


@dataclass
class _Kept:
    """The kept notes, in file order, as compact int arrays (not Python objects) plus their JSON lines' places
    in the spool file: what splitting and writing need, a few integers per note even on full MIMIC."""

    subject: array = field(default_factory=lambda: array("q"))
    hadm: array = field(default_factory=lambda: array("q"))  # -1: no admission
    when: array = field(default_factory=lambda: array("q"))  # YYYYMMDDhhmmss
    offset: array = field(default_factory=lambda: array("q"))
    length: array = field(default_factory=lambda: array("q"))
    words: array = field(default_factory=lambda: array("q"))
    target_words: array = field(default_factory=lambda: array("q"))

    def np(self, name: str) -> np.ndarray:
        return np.frombuffer(getattr(self, name), np.int64)


def _keep_reason(note: Note, cfg: DataParams, keep: set[str], seen: set[bytes]) -> tuple[str | None, int]:
    """Clean `note.text` in place; return (why it is dropped — category, error, blank, length, duplicate — or
    None, its word count)."""
    if keep and note.category not in keep:
        return "category", 0
    if note.iserror:
        return "iserror", 0
    note.text = clean_text(note.text, cfg)
    if not note.text:
        return "blank_text", 0
    n_words = count_words(note.text, cfg)
    reason = _filter_reason(note.text, n_words, cfg)
    if reason or not cfg.drop_duplicates:
        return reason, n_words
    digest = hashlib.blake2b(note.text.encode("utf-8"), digest_size=16).digest()
    if digest in seen:
        return "duplicate", n_words
    seen.add(digest)
    return None, n_words


def _spool(cfg: DataParams, raw_path: str | Path, spool_path: Path, stats: ReadStats) -> _Kept:
    """Stream the raw notes, drop what the filters reject (counted in `stats`), append each kept, cleaned note
    as a JSON line to `spool_path`, and return where each line is and what splitting needs to know of it."""
    started = time.monotonic()
    keep = {c.strip() for c in cfg.categories}
    categories: Counter = Counter()
    seen: set[bytes] = set()
    kept, position, next_log = _Kept(), 0, 250_000
    with spool_path.open("wb") as spool:
        for note in read_notes(raw_path, stats, cfg.encoding):
            if stats.rows_read >= next_log:
                log.info("prepare: %d rows read, %d notes kept, %.0f rows/s", stats.rows_read, len(kept.offset),
                         stats.rows_read / (time.monotonic() - started))
                next_log += 250_000
            if len(categories) < 1000 or note.category in categories:
                categories[note.category] += 1
            reason, n_words = _keep_reason(note, cfg, keep, seen)
            if reason:
                stats.drop(reason)
                continue
            record = {k: getattr(note, k) for k in NOTE_FIELDS}
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            spool.write(line)
            p, end = _cut(n_words, cfg)
            for name, value in (("subject", note.subject_id), ("hadm", -1 if note.hadm_id is None else note.hadm_id),
                                ("when", _time_key(note)), ("offset", position), ("length", len(line)),
                                ("words", n_words), ("target_words", end - p)):
                getattr(kept, name).append(value)
            position += len(line)
    check_malformed(stats, cfg, raw_path)
    if not kept.offset:
        shown = ", ".join(f"{c!r} ({n})" for c, n in categories.most_common(10)) or "none"
        dropped = ", ".join(f"{r}: {n}" for r, n in stats.dropped.most_common())
        raise NoteLMError(f"{raw_path}: no notes left after filtering {stats.rows_read} rows ({dropped}); "
                          f"data.categories is {cfg.categories}, categories seen: {shown}")
    return kept


ENCODINGS = ("utf-8", "cp1252", "latin-1")  # tried in turn on an undecodable row; latin-1 decodes any byte


def decodes_as(fields: list[str], read_as: str) -> tuple[str, str] | None:
    """(encoding, excerpt) of the first of ENCODINGS other than `read_as` that decodes the row's bytes strictly, the
    excerpt around its first non-ASCII character; None when none does. The fields were read as `read_as` with
    undecodable bytes kept as surrogate escapes, so encoding them back gives the file's bytes."""
    raw = ",".join(fields).encode(read_as, "surrogateescape")
    for encoding in ENCODINGS:
        if codecs.lookup(encoding).name == codecs.lookup(read_as).name:
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        at = next((i for i, ch in enumerate(text) if not ch.isascii()), 0)
        return encoding, text[max(0, at - 30):at + 30].replace("\n", " ")
    return None


FIXES = {
    "broken_quoting": "the fields are not quoted as MIMIC exports them (double quotes around multi-line text); a "
                      "spreadsheet round-trip often breaks them: use the original NOTEEVENTS.csv(.gz)",
    "non_numeric_id": "the id columns hold something else than numbers: check that this is the notes file and its "
                      "columns are not shifted",
    "unparsable_time": "the dates are not ISO (YYYY-MM-DD[ HH:MM:SS]); a spreadsheet may have reformatted them: use "
                       "the original export",
}


def check_malformed(stats: ReadStats, cfg: DataParams, path: str | Path) -> None:
    """Raise NoteLMError when more than data.max_malformed_share of the rows were rejected for one malformed reason,
    naming the file, the reason, the count, the first such row and the likely fix (for undecodable bytes: the
    encoding that decodes it). Below the share, the rows are only counted and sampled (rejects.jsonl)."""
    if cfg.max_malformed_share is None or not stats.rows_read:
        return
    for reason in MALFORMED:
        count = stats.dropped.get(reason, 0)
        if count <= cfg.max_malformed_share * stats.rows_read:
            continue
        line, detail, row = stats.first.get(reason, (None, "", []))
        fix = FIXES.get(reason, "")
        if reason == "undecodable_bytes":
            guess = decodes_as(row, cfg.encoding) if row else None
            fix = (f"the row decodes as {guess[0]} (…{guess[1]}…): rerun with -S data.encoding={guess[0]}, or set "
                   f"data.encoding in params.yaml" if guess else
                   f"the file is not {cfg.encoding}: set data.encoding in params.yaml to the encoding it was saved in")
        raise NoteLMError(
            f"{path}: {count} of {stats.rows_read} rows ({count / stats.rows_read:.1%}) were rejected as {reason}, "
            f"more than data.max_malformed_share ({cfg.max_malformed_share:.1%}); the first is at line {line} "
            f"({detail}).\n  Likely fix: {fix}.\n  Nothing was written: the previous outputs are unchanged. To skip "
            "such rows anyway: -S data.max_malformed_share=null")


def _assign(cfg: DataParams, kept: _Kept, raw_path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """({split: positions of its notes, sorted by subject, time, file order}, train pool before data.fraction)."""
    subject = kept.np("subject")
    order = np.lexsort((np.arange(len(subject)), kept.np("when"), subject))
    groups = _group_keys(cfg.split_by, subject, kept.np("hadm"))
    code = split_groups(groups, cfg.ratios, cfg.seed)[order]
    members = {name: order[code == i] for i, name in enumerate(SPLITS)}
    for name, share in zip(SPLITS, cfg.ratios):
        if share > 0 and len(members[name]) == 0:
            raise NoteLMError(
                f"{raw_path}: the {name} split is empty: {len(subject)} notes in {len(np.unique(groups))} "
                f"{cfg.split_by} group(s) are too few for data.ratios {cfg.ratios}"
            )
    pool = len(members["train"])
    members["train"] = members["train"][subsample_train(pool, cfg.fraction, cfg.seed)]
    if cfg.fraction > 1 and cfg.fraction > pool:
        log.warning("data.fraction=%d asks for more train notes than the %d available; using all", int(cfg.fraction), pool)
    return members, pool


class _Spool:
    """The kept notes in the spool file, read back one at a time (pread, not mmap: mapped pages would count in
    the stage's RSS, ~1 GB of spool on full MIMIC)."""

    def __init__(self, fh, kept: _Kept) -> None:
        self.fh, self.offset, self.length = fh, kept.np("offset"), kept.np("length")

    def note(self, i: int) -> Note:
        record = json.loads(os.pread(self.fh.fileno(), int(self.length[i]), int(self.offset[i])))
        return Note(**record, iserror=False)


def split_examples(spool: _Spool, indices: np.ndarray, cfg: DataParams, test: bool = False) -> Iterator[dict[str, Any]]:
    """The examples of one split, in its order (patient, time, file order), each prompt led by the patient's
    `data.history` most recent earlier notes of this same split. In the test split with `data.test_scored:
    alternate`, every second note of a patient (its 2nd, 4th, ...) is `scored`; the others are its context."""
    recent = Recent(cfg.history)
    current, position = None, 0
    for i in indices.tolist():
        note = spool.note(i)
        position = position + 1 if note.subject_id == current else 0
        current = note.subject_id
        example = make_example(note, cfg, recent.before(note.subject_id))
        if test:
            example["scored"] = cfg.test_scored == "all" or position % 2 == 1
        yield example
        recent.add(note.text)


def leaked_patients(test_subjects: np.ndarray, share: float, seed: int) -> set[int]:
    """The seeded share of test patients whose context notes `data.leak_test_patients` also puts into train."""
    uniq = np.unique(test_subjects)
    order = np.random.default_rng([seed, 2]).permutation(len(uniq))
    return set(uniq[order[: int(round(share * len(uniq)))]].tolist())


def _write_splits(tmp: Path, spool: _Spool, kept: _Kept, members: dict[str, np.ndarray], cfg: DataParams) -> dict:
    """Write train/val/test.jsonl; with a leak, the leaked patients' test context notes go into train too.
    Returns {scored test notes, leaked notes, leaked patients}."""
    leak = leaked_patients(kept.np("subject")[members["test"]], cfg.leak_test_patients, cfg.seed)
    leaked: list[bytes] = []
    counts = {"test_scored_notes": 0, "leaked_notes": 0, "leaked_patients": len(leak)}
    for name in ("val", "test", "train"):  # train last: it takes the leaked notes
        with split_path(name, tmp).open("wb") as out:
            for example in split_examples(spool, members[name], cfg, test=name == "test"):
                line = (json.dumps(example, ensure_ascii=False) + "\n").encode("utf-8")
                out.write(line)
                if name == "test" and example["scored"]:
                    counts["test_scored_notes"] += 1
                elif name == "test" and example["subject_id"] in leak:
                    leaked.append((json.dumps({k: v for k, v in example.items() if k != "scored"},
                                              ensure_ascii=False) + "\n").encode("utf-8"))
            if name == "train":
                out.writelines(leaked)
    counts["leaked_notes"] = len(leaked)
    return counts


def redundancy(spool: _Spool, kept: _Kept, pairs: int, seed: int) -> dict[str, Any]:
    """Mean ROUGE-1 and ROUGE-L F1 between consecutive notes (later against earlier) of the same admission and
    of the same patient, over all kept notes, on a seeded sample of at most `pairs` pairs of each: how much
    a note repeats the one before it (Searle et al. 2021 measured 43-65 % on MIMIC-III)."""
    subject, hadm = kept.np("subject"), kept.np("hadm")
    order = np.lexsort((np.arange(len(subject)), kept.np("when"), subject))
    earlier, later = order[:-1], order[1:]
    same_patient = subject[earlier] == subject[later]
    out: dict[str, Any] = {}
    for scope, mask in (("admission", same_patient & (hadm[earlier] == hadm[later]) & (hadm[later] >= 0)),
                        ("patient", same_patient)):
        chosen = np.flatnonzero(mask)
        if len(chosen) > pairs:
            chosen = np.sort(np.random.default_rng([seed, 3]).choice(chosen, pairs, replace=False))
        if not len(chosen):
            out[scope] = {"pairs": 0, "rouge1": None, "rougeL": None}
            continue
        scores = rouge_scores([spool.note(i).text for i in later[chosen].tolist()],
                              [spool.note(i).text for i in earlier[chosen].tolist()], keys=("rouge1", "rougeL"))
        out[scope] = {"pairs": int(len(chosen)), "candidates": int(mask.sum()),
                      "rouge1": round(float(scores["rouge1"].mean()), 4), "rougeL": round(float(scores["rougeL"].mean()), 4)}
    return out


def prepare(cfg: DataParams, raw_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Read, filter, clean, de-duplicate, split, subsample train; write the splits and return the data metrics.

    Writes `{out_dir}/{train,val,test}.jsonl` (each sorted by subject, chart time, file order; a leak's
    notes at the end of train) and `{out_dir}/rejects.jsonl` (sampled malformed rows) atomically as one
    directory. Raises NoteLMError, leaving earlier outputs as they were, when the input is unusable or no
    split can be filled.
    """
    started = time.monotonic()
    stats = ReadStats(rejects_sample=cfg.rejects_sample)
    with atomic_dir(out_dir) as tmp:
        spool_path = tmp / ".spool.jsonl"
        kept = _spool(cfg, raw_path, spool_path, stats)
        members, pool = _assign(cfg, kept, raw_path)
        with spool_path.open("rb") as fh:
            spool = _Spool(fh, kept)
            counts = _write_splits(tmp, spool, kept, members, cfg)
            repeats = redundancy(spool, kept, cfg.redundancy_pairs, cfg.seed)
        spool_path.unlink()
        with (tmp / REJECTS_FILE).open("w", encoding="utf-8") as out:
            for reject in stats.rejects:
                out.write(json.dumps(reject, ensure_ascii=False) + "\n")

    metrics: dict[str, Any] = {
        "rows_read": stats.rows_read,
        "notes_kept": len(kept.offset),
        "train_pool_notes": pool,
        "dropped": {reason: stats.dropped.get(reason, 0) for reason in REASONS},
        "redundancy": repeats,
        **counts,
    }
    arrays = [kept.np(k) for k in ("subject", "hadm", "words", "target_words")]
    for name in SPLITS:
        metrics[name] = _split_summary(members[name], *arrays)
    log.info("prepare: %d rows → train %d / val %d / test %d notes (%d scored) in %.1f s; consecutive notes of an "
             "admission share ROUGE-1 %s", stats.rows_read, metrics["train"]["notes"], metrics["val"]["notes"],
             metrics["test"]["notes"], counts["test_scored_notes"], time.monotonic() - started,
             repeats["admission"]["rouge1"])
    return metrics


def run(params: dict[str, Any], raw: str | Path | None = None, out: str | Path = PREPARED_DIR,
        metrics: str | Path = DATA_METRICS) -> dict[str, Any]:
    """The prepare stage: `data:` params, notes from `raw` (default data.raw_path) → `out`/ and the `metrics` file."""
    cfg = load_section(DataParams, params, "data")
    result = prepare(cfg, raw or cfg.raw_path, out)
    write_json(metrics, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("prepare", __doc__)
    parser.add_argument("--raw", help="the notes CSV(.gz) (default: data.raw_path in params.yaml)")
    parser.add_argument("--out", default=PREPARED_DIR, help=f"split directory (default: {PREPARED_DIR})")
    parser.add_argument("--metrics", default=DATA_METRICS, help=f"data metrics (default: {DATA_METRICS})")
    args = parser.parse_args(argv)
    return runner.execute("prepare", args, lambda params: run(params, args.raw, args.out, args.metrics))


if __name__ == "__main__":
    raise SystemExit(main())
