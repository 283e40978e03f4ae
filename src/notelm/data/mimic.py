"""The readers of NOTEEVENTS / MIMIC-IV-Note CSV exports: one `Note` per valid row, every other row counted.

`read_notes` streams a MIMIC-III `NOTEEVENTS.csv(.gz)` or a MIMIC-IV-Note CSV (`discharge.csv`,
`radiology.csv`) row by row, picking the schema from the header; a malformed row (wrong field count,
undecodable bytes, non-numeric id, unparsable time, an id an earlier row already has) is not yielded but
counted and sampled in a `ReadStats`. `check_malformed` refuses a file when too many rows are malformed for
one reason, naming the likely fix (for undecodable bytes: the encoding that reads it, `decodes_as`).

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
import gzip
import io
import lzma
import re
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notelm.config.data import DataParams
from notelm.core.errors import NoteLMError

# Every reason a raw row can be dropped, in the order rows are checked; each
# dropped row is counted once, under the first reason that applies. All keys
# are always present in metrics/detail/data.json so `dvc metrics diff` stays stable.
MALFORMED = ("broken_quoting", "undecodable_bytes", "non_numeric_id", "unparsable_time", "duplicate_row_id")
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

_FIELD_LIMIT = 1 << 26  # 64 MiB: far above any real note, low enough to bound a runaway quoted field

# Python < 3.11's csv module stops at a NUL ("line contains NUL") and loses the record it was in; there each NUL
# is read as SUB (U+001A, the control that stands for an invalid character), which cleaning strips and counts
# like the NUL it replaces.
_CSV_READS_NUL = sys.version_info >= (3, 11)

# A header that is one field holding one of these splits into columns: an export with another delimiter.
_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


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
    """Counts of rows read and dropped per reason, plus the first `rejects_sample` malformed rows per reason, and
    what cleaning changed in the notes it cleaned (`cleaned`, keys: notelm.data.notes.CLEANING)."""

    rejects_sample: int = 100
    rows_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    cleaned: Counter = field(default_factory=Counter)
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


# Compressions by their magic bytes (what pandas reads by extension): the format and how to open it.
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd", b"PK\x03\x04": "zip"}
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _compression(path: Path) -> str | None:
    """The compression `path` starts with (COMPRESSIONS), or None for plain bytes."""
    with path.open("rb") as fh:
        head = fh.read(6)
    return next((name for magic, name in COMPRESSIONS.items() if head.startswith(magic)), None)


def _zip_member(path: Path):
    """The one CSV inside a zip archive, opened as bytes; a clear error for an archive of none or several."""
    archive = zipfile.ZipFile(path)
    names = [n for n in archive.namelist() if not n.endswith("/")]
    csvs = [n for n in names if n.lower().endswith((".csv", ".txt"))] or names
    if len(csvs) != 1:
        raise NoteLMError(f"{path}: a zip archive holding {len(names)} file(s) ({', '.join(names[:5]) or 'none'}); "
                          "expected exactly one notes CSV. Unzip it and set data.raw_path to the notes file")
    return archive.open(csvs[0])


def _open_bytes(path: Path):
    """`path` as a binary stream, decompressed (gzip, bz2, xz, zstd, zip: by magic bytes, whatever the name)."""
    import bz2

    kind = _compression(path)
    if kind == "zstd":
        try:
            import zstandard
        except ImportError as exc:
            raise NoteLMError(
                f"{path}: the file is zstd-compressed and the zstandard package is not installed; "
                f"`pip install zstandard`, or decompress it (`zstd -d {path}`) and set data.raw_path to the CSV"
            ) from exc
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True))
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open, "zip": _zip_member}.get(kind, Path.open)
    return opener(path, "rb") if kind != "zip" else opener(path)


def _open_text(path: Path, encoding: str = "utf-8"):
    """Open `path` as text in `encoding` (UTF-8 with or without a byte-order mark), decompressed (_open_bytes);
    undecodable bytes become surrogate escapes. A UTF-16 byte-order mark (Excel's "Unicode text") is read as
    UTF-16 whatever `encoding` says: the mark names the encoding."""
    with _open_bytes(path) as probe:
        mark = probe.read(2)
    if mark in UTF16_BOMS:
        encoding = "utf-16"
    elif codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    return io.TextIOWrapper(_open_bytes(path), encoding=encoding, errors="surrogateescape", newline="")


def _shown(schema: str, columns: list[str]) -> str:
    """Column names as the schema's files spell them (MIMIC-III upper case, MIMIC-IV lower case)."""
    return ", ".join(c.upper() if schema.startswith("MIMIC-III") else c for c in columns)


def _foreign_delimiter(header: list[str]) -> str | None:
    """The delimiter of _DELIMITERS that splits a one-field header into a schema's required columns, else None."""
    if len(header) != 1:
        return None
    for delimiter in _DELIMITERS:
        names = {part.strip().strip('"').lower() for part in header[0].split(delimiter)}
        if any(set(columns.values()) <= names for columns in SCHEMAS.values()):
            return delimiter
    return None


def _delimiter_error(path: Path, delimiter: str) -> NoteLMError:
    """The error for an export separated by `delimiter`: what the header shows and a command that re-exports it."""
    out = path.with_name(f"comma-{path.name}")  # same suffixes: pandas gzips it again if the input was .gz
    with _open_bytes(path) as probe:
        utf16 = ", encoding='utf-16'" if probe.read(2) in UTF16_BOMS else ""  # written back as UTF-8
    return NoteLMError(
        f"{path}: the header is separated by {delimiter!r} ({_DELIMITERS[delimiter]}), not commas; the notes "
        f"are read as comma-separated CSV, as MIMIC exports them. Re-export the file as comma-separated CSV, e.g.\n"
        f"  python -c \"import pandas as pd; pd.read_csv('{path}', sep={delimiter!r}{utf16}, dtype=str, "
        f"keep_default_na=False).to_csv('{out}', index=False)\"\n"
        f"and set data.raw_path to {out} (or use the original comma-separated MIMIC export)"
    )


def _detect_schema(header: list[str], path: Path) -> tuple[str, dict[str, int]]:
    """Pick the schema whose columns the header holds; map each internal field to its column index (case-insensitive).
    Raises NoteLMError naming the missing columns, or the delimiter when the header is not comma-separated."""
    position = {h.strip().lower(): i for i, h in enumerate(header)}
    best = max(SCHEMAS, key=lambda s: len(set(SCHEMAS[s].values()) & set(position)))
    missing = [c for c in SCHEMAS[best].values() if c not in position]
    if missing and (delimiter := _foreign_delimiter(header)):
        raise _delimiter_error(path, delimiter)
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


def _records(reader: Any, ncols: int, stats: ReadStats) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of each record with the header's `ncols` fields. Every record is counted in
    `stats.rows_read`; a parser error or a wrong field count is dropped as broken_quoting. Blank lines are skipped."""
    line = reader.line_num + 1  # first physical line of the next record
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
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
        yield start, row


def _id_key(note: Note, schema: str) -> int | str:
    """What makes two notes' ids the same: the number for MIMIC-III's ROW_ID ('7' and '7.0' are one id; an int
    also takes less memory than its string over 2 M rows), the string for MIMIC-IV's note_id."""
    return _to_int(note.note_id) if schema.startswith("MIMIC-III") else note.note_id


def read_notes(path: str | Path, stats: ReadStats | None = None, encoding: str = "utf-8") -> Iterator[Note]:
    """Stream the notes of a MIMIC-III or MIMIC-IV-Note CSV (plain, or compressed as pandas reads: gzip, bz2, xz,
    zstd, zip) in `encoding` (UTF-16 where a byte-order mark says so), one record at a time.

    Every data record is counted in `stats.rows_read`; a malformed one (wrong field count,
    undecodable bytes, non-numeric id, unparsable time) is not yielded but counted under its
    reason in `stats.dropped` and sampled in `stats.rejects`. So is a row whose id (ROW_ID, note_id)
    an earlier valid row already has (duplicate_row_id): the first is kept, since generations and scores
    are keyed by the id. NUL bytes are read as text (see _CSV_READS_NUL). Raises NoteLMError for a
    missing, empty, header-only or unreadable file, a directory (naming the notes file in it), or a header lacking
    required columns (naming its delimiter when it is not a comma).
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.is_file() and ".csv" in p.name.lower())
        notes = [n for n in inside if n.lower().startswith(("noteevents", "discharge", "radiology"))] or inside
        raise NoteLMError(
            f"{path}: data.raw_path is a directory; it must name the notes file itself. "
            + (f"Set data.raw_path to {path / notes[0]} (CSV files here: {', '.join(inside[:6])})" if notes else
               "It holds no CSV file: set data.raw_path to your NOTEEVENTS.csv(.gz) or MIMIC-IV-Note CSV")
        )
    if not path.is_file():
        raise NoteLMError(
            f"{path}: raw notes file not found; run `dvc repro synthesize` to build the synthetic corpus, "
            f"or set data.raw_path in params.yaml to your NOTEEVENTS.csv(.gz) or MIMIC-IV-Note CSV"
        )
    if path.stat().st_size == 0:
        raise NoteLMError(f"{path}: the file is empty; expected a CSV header and note rows")
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    seen: set[int | str] = set()
    try:
        with _open_text(path, encoding) as fh:
            reader = csv.reader(fh if _CSV_READS_NUL else (line.replace("\0", "\x1a") for line in fh))
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise NoteLMError(f"{path}: the file is empty (no header row); expected a CSV header and note rows")
            schema, cols = _detect_schema(header, path)
            names = {key: header[i].strip() for key, i in cols.items()}
            for start, row in _records(reader, len(header), stats):
                parsed = _parse_row(row, cols, names, schema)
                if not isinstance(parsed, Note):
                    stats.drop(parsed[0], start, parsed[1], row)
                elif (key := _id_key(parsed, schema)) in seen:
                    stats.drop("duplicate_row_id", start, f"{names['note_id']}={parsed.note_id!r} repeats the id of "
                               "an earlier row, which is kept", row)
                else:
                    seen.add(key)
                    yield parsed
    except (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise NoteLMError(
            f"{path}: could not read past data row {stats.rows_read} ({exc}); the file looks truncated or corrupt"
        ) from exc
    if stats.rows_read == 0:
        raise NoteLMError(f"{path}: the file has a header but no data rows")


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
    "duplicate_row_id": "rows share an id (ROW_ID; MIMIC-IV: note_id), as when two exports are concatenated: use one "
                        "export, or keep each id's first row (pandas: df.drop_duplicates('ROW_ID'))",
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
