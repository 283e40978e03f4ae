"""Tests for the MIMIC readers (src/notelm/data/mimic.py): both schemas, malformed rows, encodings, the malformed share.

The CSV helpers here (headers, rows, a corpus, a writer) are shared with tests/stages/test_prepare.py.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

import pytest

from notelm.config.data import DataParams
from notelm.core.errors import NoteLMError
from notelm.data import mimic
from notelm.data.mimic import FIXES, Note, ReadStats, check_malformed, decodes_as, read_notes

HEADER3 = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CHARTTIME", "STORETIME", "CATEGORY", "DESCRIPTION", "CGID", "ISERROR", "TEXT"]
HEADER4 = ["note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text"]
WORDS = "neuro alert oriented follows commands resp lungs clear sat stable cv sinus rhythm pain controlled plan monitor".split()


def note_text(i: int, n_words: int = 24) -> str:
    """A multi-line note unique to `i`."""
    words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(n_words)]
    return f"Note {i}:\n" + "\n".join(" ".join(words[k : k + 6]) for k in range(0, n_words, 6)) + f"\nHR {60 + i}."


def row3(row_id, subject, hadm, text, category="Nursing", chartdate="2101-01-02", charttime="2101-01-02 08:00:00", iserror=""):
    return [str(row_id), str(subject), "" if hadm is None else str(hadm), chartdate, charttime, "", category, "Nursing Progress Note", "17", iserror, text]


def corpus(n_subjects: int = 30, notes_per_subject: int = 4) -> list[list[str]]:
    """Rows for `n_subjects` patients, two admissions each, several nursing notes per admission."""
    rows, row_id = [], 0
    for s in range(1, n_subjects + 1):
        for k in range(notes_per_subject):
            row_id += 1
            day = 1 + k
            rows.append(row3(row_id, s, 1000 * s + k % 2, note_text(row_id), chartdate=f"2101-02-{day:02d}", charttime=f"2101-02-{day:02d} 0{k % 10}:00:00"))
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER3, gz: bool = False) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- both schemas, one Note ----------------------------------------------------------------------------


def test_a_mimic3_row_becomes_a_note(tmp_path):
    rows = [row3(1, 7, 700, "first note", category="Physician ", charttime=""),
            row3(2, 7, None, "second note", chartdate="2101-01-03", charttime="2101-01-03 09:30", iserror="1")]
    stats = ReadStats()
    notes = list(read_notes(write_csv(tmp_path / "n.csv.gz", rows, gz=True), stats))
    assert notes == [Note("1", 7, 700, "Physician", "2101-01-02", None, "first note", False),
                     Note("2", 7, None, "Nursing", "2101-01-03", "2101-01-03 09:30:00", "second note", True)]
    assert stats.rows_read == 2 and not stats.dropped


def test_a_mimic4_row_becomes_a_note_dated_by_its_charttime(tmp_path):
    rows = [["10000003-DS-1", "10000003", "20000003", "DS", "1", "2180-05-07 15:26:00", "", "a discharge note"],
            ["10000003-DS-2", "10000003", "", "DS", "2", "2180-05-08 10:00:00", "", "another one"]]
    notes = list(read_notes(write_csv(tmp_path / "discharge.csv", rows, header=HEADER4)))
    assert notes[0] == Note("10000003-DS-1", 10000003, 20000003, "DS", "2180-05-07", "2180-05-07 15:26:00", "a discharge note", False)
    assert notes[1].hadm_id is None and notes[1].chartdate == "2180-05-08"


@pytest.mark.parametrize("value, number", [("123", 123), (" 123.0 ", 123), ("1.5", None), ("abc", None), ("", None)])
def test_ids_are_whole_numbers(value, number):
    assert mimic._to_int(value) == number


# --- malformed rows: counted under their reason, sampled, reading goes on -------------------------------


def test_malformed_rows_are_counted_with_their_reason_line_and_detail(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(2, 1))
    with raw.open("ab") as fh:
        fh.write(b'201,3,3001,2101-01-05,,,Nursing,d,1,,"caf\xe9"\n')
        fh.write(b'202,abc,3001,2101-01-05,,,Nursing,d,1,,"non numeric subject"\n')
        fh.write(b'203,3,3001,2101-13-45,,,Nursing,d,1,,"impossible date"\n')
        fh.write(b'204,3,3001,2101-01-05,,,Nursing\n')
        fh.write(b'205,4,4001,2101-01-06,,,Nursing,d,1,,"good after the bad ones"\n')
    stats = ReadStats(rejects_sample=1)
    notes = list(read_notes(raw, stats))
    assert [n.note_id for n in notes] == ["1", "2", "205"]
    assert stats.rows_read == 7
    assert stats.dropped == {"undecodable_bytes": 1, "non_numeric_id": 1, "unparsable_time": 1, "broken_quoting": 1}
    line, detail, row = stats.first["non_numeric_id"]
    assert detail == "SUBJECT_ID='abc' is not an integer" and row[0] == "202"
    assert raw.read_bytes().split(b"\n")[line - 1].startswith(b"202,")  # the record's first physical line
    assert stats.first["broken_quoting"][1] == "expected 11 fields, got 7"
    (undecodable,) = [r for r in stats.rejects if r["reason"] == "undecodable_bytes"]
    assert undecodable["fields"][10] == "caf\\xe9"  # shown, so rejects.jsonl stays valid UTF-8


def test_a_parser_error_is_counted_and_reading_goes_on(tmp_path, monkeypatch):
    rows = corpus(6, 2)
    rows.insert(3, row3(77, 1, 1000, "x" * 5000))  # longer than the field limit set below
    raw = write_csv(tmp_path / "n.csv", rows)
    old = csv.field_size_limit(1000)
    monkeypatch.setattr(mimic, "_FIELD_LIMIT", 1000)
    stats = ReadStats()
    try:
        notes = list(read_notes(raw, stats))
    finally:
        csv.field_size_limit(old)
    assert len(notes) == 12 and stats.dropped == {"broken_quoting": 1}
    (reject,) = stats.rejects
    assert "field larger than field limit" in reject["detail"]


# --- encodings and the malformed share --------------------------------------------------------------------


def test_decodes_as_names_the_encoding_that_reads_the_row():
    cp1252 = "Temp 38.2°C – café".encode("cp1252").decode("utf-8", "surrogateescape")
    assert decodes_as([cp1252], "utf-8") == ("cp1252", "Temp 38.2°C – café")
    undefined_in_cp1252 = b"x \x81 y".decode("utf-8", "surrogateescape")
    assert decodes_as([undefined_in_cp1252], "utf-8")[0] == "latin-1"
    assert decodes_as(["plain ascii"], "latin-1") == ("utf-8", "plain ascii")


def _stats(reason: str, count: int, rows: int = 100) -> ReadStats:
    stats = ReadStats(rows_read=rows)
    for _ in range(count):
        stats.drop(reason, 9, "a detail", ["1", "2"])
    return stats


def test_check_malformed_refuses_only_above_the_share():
    cfg = DataParams(max_malformed_share=0.01)
    check_malformed(_stats("unparsable_time", 1), cfg, "n.csv")  # 1 % is not more than 1 %
    check_malformed(_stats("duplicate", 50), cfg, "n.csv")  # a filter, not a malformed row
    check_malformed(_stats("unparsable_time", 50), DataParams(max_malformed_share=None), "n.csv")
    with pytest.raises(NoteLMError) as info:
        check_malformed(_stats("unparsable_time", 2), cfg, "n.csv")
    message = str(info.value)
    assert message.startswith("n.csv: 2 of 100 rows (2.0%) were rejected as unparsable_time, more than "
                              "data.max_malformed_share (1.0%); the first is at line 9 (a detail)")
    assert FIXES["unparsable_time"] in message and "-S data.max_malformed_share=null" in message


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(NoteLMError, match=r"raw notes file not found; run `dvc repro synthesize`"):
        next(read_notes(tmp_path / "nope.csv"))


# --- repeated ids, NUL bytes, other delimiters ------------------------------------------------------------


def test_a_repeated_row_id_is_counted_from_its_first_repeat_and_the_first_row_kept(tmp_path):
    rows = corpus(2, 2)  # ROW_ID 1-4
    later = [row3("2.0", 9, 9000, "a later row under note 2's id"), *rows[2:]]  # '2.0' is the id 2
    raw = write_csv(tmp_path / "n.csv.gz", rows + later, gz=True)
    stats = ReadStats()
    notes = list(read_notes(raw, stats))
    assert [(n.note_id, n.text) for n in notes] == [(r[0], r[10]) for r in rows]
    assert stats.rows_read == 7 and stats.dropped == {"duplicate_row_id": 3}
    line, detail, row = stats.first["duplicate_row_id"]
    assert detail == "ROW_ID='2.0' repeats the id of an earlier row, which is kept" and row[0] == "2.0"
    assert gzip.decompress(raw.read_bytes()).split(b"\n")[line - 1].startswith(b"2.0,")


def test_a_repeated_mimic4_note_id_is_counted(tmp_path):
    rows = [["1-DS-1", "1", "", "DS", "1", "2180-05-07 15:26:00", "", "first"],
            ["1-DS-1", "1", "", "DS", "2", "2180-05-08 10:00:00", "", "second"]]
    stats = ReadStats()
    notes = list(read_notes(write_csv(tmp_path / "discharge.csv", rows, header=HEADER4), stats))
    assert [n.text for n in notes] == ["first"] and stats.dropped == {"duplicate_row_id": 1}
    line, detail, _ = stats.first["duplicate_row_id"]
    assert (line, detail) == (3, "note_id='1-DS-1' repeats the id of an earlier row, which is kept")


@pytest.mark.parametrize("csv_reads_nul", [
    pytest.param(True, marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="csv reads NUL from Python 3.11")),
    False,  # Python 3.10's csv module raises 'line contains NUL': each NUL is read as SUB there
])
def test_a_nul_byte_is_read_as_text_not_a_parser_error(tmp_path, monkeypatch, csv_reads_nul):
    monkeypatch.setattr(mimic, "_CSV_READS_NUL", csv_reads_nul)
    raw = write_csv(tmp_path / "n.csv", [row3(1, 7, 700, "before\x00after\nline two"), row3(2, 7, 700, "next\x00")])
    stats = ReadStats()
    notes = list(read_notes(raw, stats))
    nul = "\x00" if csv_reads_nul else "\x1a"
    assert [n.text for n in notes] == [f"before{nul}after\nline two", f"next{nul}"]
    assert stats.rows_read == 2 and not stats.dropped


def _export(path: Path, delimiter: str, quoting: int = csv.QUOTE_MINIMAL) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter, quoting=quoting)
        writer.writerow(HEADER3)
        writer.writerows(corpus(2, 2))
    return path


@pytest.mark.parametrize("delimiter, quoting, shown", [
    (";", csv.QUOTE_MINIMAL, "';' (semicolons)"), (";", csv.QUOTE_ALL, "';' (semicolons)"),
    ("\t", csv.QUOTE_MINIMAL, "'\\t' (tabs)"), ("|", csv.QUOTE_MINIMAL, "'|' (pipes)"),
])
def test_another_delimiter_is_named_with_a_command_that_fixes_it(tmp_path, delimiter, quoting, shown):
    raw = _export(tmp_path / "NOTEEVENTS.csv.gz", delimiter, quoting)
    with pytest.raises(NoteLMError) as info:
        list(read_notes(raw))
    message = str(info.value)
    assert message.startswith(f"{raw}: the header is separated by {shown}, not commas")
    fixed = tmp_path / "comma-NOTEEVENTS.csv.gz"
    command = message.split('python -c "', 1)[1].split('"\n', 1)[0]
    assert f"sep={delimiter!r}" in command and f"and set data.raw_path to {fixed}" in message
    exec(command)  # the suggested re-export gives the same notes as a comma-separated export
    assert list(read_notes(fixed)) == list(read_notes(write_csv(tmp_path / "n.csv", corpus(2, 2))))


def test_a_header_that_no_delimiter_splits_into_columns_gets_the_missing_columns_error(tmp_path):
    raw = tmp_path / "n.csv"
    raw.write_text("ROW_ID;SUBJECT_ID;TEXT\n1;2;a note\n")
    with pytest.raises(NoteLMError, match=r"missing required column\(s\) .* \(found: ROW_ID;SUBJECT_ID;TEXT\)"):
        list(read_notes(raw))


# --- compressions and encodings the reader recognises -------------------------------------------------------


def test_a_zstd_file_without_the_zstandard_package_names_the_compression_and_the_fix(tmp_path, monkeypatch):
    raw = tmp_path / "NOTEEVENTS.csv.zst"
    raw.write_bytes(b"(\xb5/\xfd" + b"\x00" * 16)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # importing it raises ImportError
    with pytest.raises(NoteLMError, match=r"NOTEEVENTS.csv.zst: the file is zstd-compressed and the zstandard package "
                                          r"is not installed; `pip install zstandard`, or decompress it"):
        list(read_notes(raw))


def test_excels_utf16_unicode_text_is_read_as_utf16_and_its_tabs_named_with_a_command_that_fixes_them(tmp_path):
    plain = write_csv(tmp_path / "n.csv", corpus(2, 2))
    text = io.StringIO()
    csv.writer(text, delimiter="\t").writerows([HEADER3, *corpus(2, 2)])
    raw = tmp_path / "NOTEEVENTS.txt"
    raw.write_bytes(text.getvalue().encode("utf-16"))  # with its byte-order mark, as Excel writes it
    with pytest.raises(NoteLMError) as info:
        list(read_notes(raw))
    message = str(info.value)
    assert message.startswith(f"{raw}: the header is separated by '\\t' (tabs), not commas")
    command = message.split('python -c "', 1)[1].split('"\n', 1)[0]
    assert "encoding='utf-16'" in command
    exec(command)
    assert list(read_notes(tmp_path / "comma-NOTEEVENTS.txt")) == list(read_notes(plain))
