"""Tests for the synthesize stage (src/notelm/stages/synthesize.py): the CSV it writes, its params, run()."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

import pandas as pd
import pytest

from notelm.config.synthetic import SyntheticParams
from notelm.core.errors import ParamsError
from notelm.core.loader import load_section
from notelm.data.synthetic import NURSING_CATEGORIES, generate_rows
from notelm.stages.synthesize import COLUMNS, Paths, run, write_corpus


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return generate_rows(SyntheticParams())


def test_file_has_exact_schema_and_pandas_reads_it(tmp_path: Path, rows: list[dict]) -> None:
    path = tmp_path / "NOTEEVENTS.csv.gz"
    assert write_corpus(rows, path) == len(rows)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == list(COLUMNS)
    df = pd.read_csv(path, compression="gzip", keep_default_na=False, dtype=str)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(rows)
    assert df["ROW_ID"].astype(int).is_monotonic_increasing and df["ROW_ID"].is_unique
    hadm = df.loc[df["HADM_ID"] != "", "HADM_ID"].astype(int)
    assert hadm.between(100_000, 199_999).all()
    assert df["SUBJECT_ID"].str.fullmatch(r"\d+").all()
    assert df["CGID"].str.fullmatch(r"\d*").all()
    assert df["CHARTDATE"].str.fullmatch(r"2[12]\d\d-\d\d-\d\d").all()
    for col in ("CHARTTIME", "STORETIME"):
        assert df[col].str.fullmatch(r"(2[12]\d\d-\d\d-\d\d \d\d:\d\d:\d\d)?").all()
    assert set(df["ISERROR"]) == {"", "1"}
    nursing = df[df["CATEGORY"].isin(NURSING_CATEGORIES)]
    assert (nursing["CHARTTIME"].str[:10] == nursing["CHARTDATE"]).all()
    assert (nursing["STORETIME"] > nursing["CHARTTIME"]).all()


def test_multiline_text_round_trips(tmp_path: Path, rows: list[dict]) -> None:
    path = tmp_path / "notes.csv.gz"
    write_corpus(rows, path)
    df = pd.read_csv(path, compression="gzip", keep_default_na=False, dtype=str)
    assert sum("\n" in t for t in df["TEXT"]) > len(df) // 2
    assert list(df["TEXT"]) == [r["TEXT"] for r in rows]


def test_plain_csv_when_name_has_no_gz(tmp_path: Path) -> None:
    rows = generate_rows(SyntheticParams(patients=2))
    path = tmp_path / "notes.csv"
    write_corpus(rows, path)
    assert path.read_bytes().startswith(b"ROW_ID,SUBJECT_ID,")


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    cfg = SyntheticParams(patients=10)
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    write_corpus(generate_rows(cfg), a)
    random.seed(12345)  # global random state must not matter
    write_corpus(generate_rows(cfg), b)
    write_corpus(generate_rows(SyntheticParams(patients=10, seed=1)), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime field is zero


@pytest.mark.parametrize(
    "key, value",
    [
        ("patients", 0),
        ("patients", 60_000),
        ("admissions_per_patient", [3, 2]),
        ("notes_per_admission", [0, 2]),
        ("notes_per_admission", [2]),
        ("words_per_note", [10, 20]),
        ("copy_forward", 1.5),
        ("other_category_share", 0.95),
        ("error_rows", -1),
        ("error_rows", 10_000),
        ("blank_rows", -2),
        ("patients", "ten"),
    ],
)
def test_bad_param_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ParamsError, match=rf"synthetic\.{key}"):
        load_section(SyntheticParams, {"synthetic": {key: value}})


def test_unknown_key_rejected() -> None:
    with pytest.raises(ParamsError, match=r"synthetic\.patient\b"):
        load_section(SyntheticParams, {"synthetic": {"patient": 3}})


def test_interrupted_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "NOTEEVENTS.csv.gz"
    rows = generate_rows(SyntheticParams(patients=3))
    write_corpus(rows, path)
    before = path.read_bytes()

    def failing():
        yield from rows[:5]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_corpus(failing(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_run_writes_output_and_returns_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "raw" / "NOTEEVENTS.csv.gz"
    stats = run({"synthetic": {"patients": 4}}, Paths(out=str(out)))
    df = pd.read_csv(out, compression="gzip", keep_default_na=False, dtype=str)
    assert stats["rows"] == len(df)
    assert stats["patients"] == df["SUBJECT_ID"].nunique() == 4
    assert stats["nursing_notes"] == df["CATEGORY"].isin(NURSING_CATEGORIES).sum()


def test_generated_rows_carry_exactly_the_written_columns(rows: list[dict]) -> None:
    assert all(list(row) == list(COLUMNS) for row in rows)
