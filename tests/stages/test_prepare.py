"""Tests for the prepare stage (src/notelm/stages/prepare.py) end to end: the splits and metrics it writes,
what it drops and why, bad input, history, scored test notes, the leak, redundancy. The readers, the cleaning
and the split logic have their own unit tests (tests/data/test_mimic.py, tests/data/test_notes.py, tests/data/test_splits.py)."""

from __future__ import annotations

import csv
import dataclasses
import bz2
import gzip
import lzma
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from notelm.config.audit import AuditParams
from notelm.config.data import DataParams
from notelm.config.names import HISTORY_MARK, NOTE_MARK
from notelm.core.errors import NoteLMError, ParamsError
from notelm.core.loader import load_section
from notelm.data.mimic import FIXES, REASONS
from notelm.data.notes import clean_text, strip_controls
from notelm.stages import prepare as data
from tests.data.test_mimic import HEADER3, HEADER4, corpus, note_text, row3, write_csv


@dataclass(frozen=True)
class Case:
    """The `data:` params of a test run and where the stage writes (its --out and --metrics)."""

    params: DataParams
    out_dir: str
    metrics_path: str

    def __getattr__(self, name):
        return getattr(self.params, name)


def config(tmp_path: Path, raw: Path, **overrides) -> Case:
    out_dir = overrides.pop("out_dir", str(tmp_path / "prepared"))
    metrics_path = overrides.pop("metrics_path", str(tmp_path / "metrics" / "data.json"))
    values = dict(raw_path=str(raw), min_chars=10, min_words=4, ratios=[0.8, 0.1, 0.1])
    values.update(overrides)
    return Case(DataParams(**values), out_dir, metrics_path)


def prepare(case: Case) -> dict:
    """The stage as dvc.yaml runs it: the params, the raw file, --out and --metrics."""
    return data.run({"data": dataclasses.asdict(case.params)}, data.Paths(str(case.raw_path), str(case.out_dir),
                                                                           str(case.metrics_path)))


def read_split(cfg: Case, name: str) -> list[dict]:
    return [json.loads(line) for line in (Path(cfg.out_dir) / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def outputs(cfg: Case) -> dict[str, bytes]:
    files = [Path(cfg.out_dir) / f"{n}.jsonl" for n in ("train", "val", "test", "rejects")] + [Path(cfg.metrics_path)]
    return {str(f): f.read_bytes() for f in files}


# --- the happy path ----------------------------------------------------------------------------------


def test_prepare_writes_subject_level_splits_and_metrics(tmp_path):
    cfg = config(tmp_path, write_csv(tmp_path / "NOTEEVENTS.csv", corpus(30, 4)))
    metrics = prepare(cfg)

    splits = {name: read_split(cfg, name) for name in ("train", "val", "test")}
    subjects = {name: {ex["subject_id"] for ex in rows} for name, rows in splits.items()}
    assert not (subjects["train"] & subjects["test"]) and not (subjects["train"] & subjects["val"]) and not (subjects["val"] & subjects["test"])
    assert [len(subjects[n]) for n in ("train", "val", "test")] == [24, 3, 3]
    assert metrics["rows_read"] == 120 and metrics["notes_kept"] == 120
    for name, rows in splits.items():
        assert metrics[name]["notes"] == len(rows)
        assert metrics[name]["patients"] == len(subjects[name])
        assert metrics[name]["admissions"] == len({ex["hadm_id"] for ex in rows})
    assert json.loads(Path(cfg.metrics_path).read_text()) == metrics
    ex = splits["train"][0]
    assert set(ex) == {"note_id", "subject_id", "hadm_id", "category", "chartdate", "charttime", "prompt", "target"}
    assert isinstance(ex["note_id"], str) and isinstance(ex["subject_id"], int) and isinstance(ex["hadm_id"], int)
    # sorted by patient, then chart time
    for rows in splits.values():
        keys = [(ex["subject_id"], ex["chartdate"]) for ex in rows]
        assert keys == sorted(keys)


def test_gzip_input_gives_the_same_outputs(tmp_path):
    rows = corpus(10, 3)
    plain = config(tmp_path / "a", write_csv(tmp_path / "n.csv", rows))
    gz = config(tmp_path / "b", write_csv(tmp_path / "n.csv.gz", rows, gz=True))
    prepare(plain)
    prepare(gz)
    assert list(outputs(plain).values()) == list(outputs(gz).values())


def _zipped(path: Path, rows) -> Path:
    import zipfile

    plain = write_csv(path.parent / "NOTEEVENTS.csv", rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:  # zipped by hand: one member, any name
        archive.write(plain, "NOTEEVENTS.csv")
    plain.unlink()
    return path


def _compressed(opener):
    def write(path: Path, rows) -> Path:
        plain = write_csv(path.parent / "plain.csv", rows).read_bytes()
        with opener(path, "wb") as fh:
            fh.write(plain)
        return path
    return write


def _utf16(path: Path, rows) -> Path:  # Excel's "Unicode text" keeps commas when saved as CSV UTF-16
    path.write_bytes(write_csv(path.parent / "plain.csv", rows).read_text(encoding="utf-8").encode("utf-16"))
    return path


@pytest.mark.parametrize("name, write", [
    ("NOTEEVENTS.csv.zip", _zipped), ("NOTEEVENTS.csv.xz", _compressed(lzma.open)),
    ("NOTEEVENTS.csv.bz2", _compressed(bz2.open)), ("NOTEEVENTS.csv", _compressed(lzma.open)),  # by magic, not name
    ("NOTEEVENTS-utf16.csv", _utf16),
])
def test_compressed_and_utf16_exports_give_the_same_outputs(tmp_path, name, write):
    rows = corpus(10, 3)
    plain = config(tmp_path / "a", write_csv(tmp_path / "n.csv", rows))
    (tmp_path / "b").mkdir()
    other = config(tmp_path / "b", write(tmp_path / "b" / name, rows))
    prepare(plain)
    prepare(other)
    assert list(outputs(plain).values()) == list(outputs(other).values())


def test_same_params_give_byte_identical_outputs(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(20, 3) + [row3(999, 5, None, "bad \xff", chartdate="nope")])
    cfg = config(tmp_path, raw, max_malformed_share=None)
    prepare(cfg)
    first = outputs(cfg)
    prepare(cfg)
    assert outputs(cfg) == first


def test_run_builds_config_from_params(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(10, 2))
    out = tmp_path / "prepared"
    metrics = data.run({"data": {"raw_path": str(raw), "min_words": 4, "fraction": 5}},
                       data.Paths(out=str(out), metrics=str(tmp_path / "m.json")))
    assert metrics["train"]["notes"] == 5
    with pytest.raises(ParamsError, match="data.spilt_by"):
        data.run({"data": {"spilt_by": "note"}})


# --- the test set does not move with data.fraction ---------------------------------------------------


def test_fraction_subsamples_train_only_and_test_is_byte_identical(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(40, 3))
    metrics, train_ids, test_files, val_files = {}, {}, set(), set()
    for fraction in (1.0, 0.5, 3):
        cfg = config(tmp_path, raw, fraction=fraction, out_dir=str(tmp_path / f"out{fraction}"))
        metrics[fraction] = prepare(cfg)
        train_ids[fraction] = {ex["note_id"] for ex in read_split(cfg, "train")}
        test_files.add((Path(cfg.out_dir) / "test.jsonl").read_bytes())
        val_files.add((Path(cfg.out_dir) / "val.jsonl").read_bytes())
    assert len(test_files) == 1 and len(val_files) == 1 and test_files != {b""}
    pool = metrics[1.0]["train_pool_notes"]
    assert metrics[1.0]["train"]["notes"] == pool == 96
    assert metrics[0.5]["train"]["notes"] == 48
    assert metrics[3]["train"]["notes"] == 3
    assert train_ids[3] <= train_ids[0.5] <= train_ids[1.0]  # a smaller fraction keeps a subset


def test_fraction_count_larger_than_train_keeps_all(tmp_path):
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", corpus(10, 2)), fraction=5000)
    metrics = prepare(cfg)
    assert metrics["train"]["notes"] == metrics["train_pool_notes"]


@pytest.mark.parametrize("fraction", [0.0, -1.0, 2.5])
def test_bad_fraction_is_refused(fraction):
    with pytest.raises(ParamsError, match="data.fraction"):
        DataParams(fraction=fraction)


# --- splits ------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(subjects=st.lists(st.integers(min_value=1, max_value=12), min_size=3, max_size=60), seed=st.integers(0, 1000))
def test_subject_split_shares_no_subject_on_any_input(subjects, seed):
    rows = [row3(i + 1, s, 500 + s * 3 + i % 3, note_text(i)) for i, s in enumerate(subjects)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = config(tmp, write_csv(tmp / "n.csv", rows), seed=seed, ratios=[0.6, 0.2, 0.2])
        try:
            prepare(cfg)
        except NoteLMError as exc:  # fewer than 3 patients: refused, never split
            assert len(set(subjects)) < 3 and "split is empty" in str(exc)
            return
        seen = [{ex["subject_id"] for ex in read_split(cfg, n)} for n in ("train", "val", "test")]
        assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
        assert set().union(*seen) == set(subjects)


def test_admission_split_shares_no_admission_and_note_split_leaks_subjects(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(20, 6))
    adm = config(tmp_path, raw, split_by="admission", out_dir=str(tmp_path / "adm"))
    prepare(adm)
    hadms = [{ex["hadm_id"] for ex in read_split(adm, n)} for n in ("train", "val", "test")]
    assert not (hadms[0] & hadms[1]) and not (hadms[0] & hadms[2]) and not (hadms[1] & hadms[2])

    note = config(tmp_path, raw, split_by="note", out_dir=str(tmp_path / "note"))
    metrics = prepare(note)
    train = {ex["subject_id"] for ex in read_split(note, "train")}
    test = {ex["subject_id"] for ex in read_split(note, "test")}
    assert train & test  # the leaky split of the original study
    assert metrics["test"]["notes"] == 12


def test_too_few_patients_for_the_ratios_is_a_clear_error(tmp_path):
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", corpus(2, 3)))
    with pytest.raises(NoteLMError, match=r"split is empty: 6 notes in 2 subject group"):
        prepare(cfg)


# --- filters, each counted under its reason --------------------------------------------------------


def test_filters_are_counted_per_reason(tmp_path):
    rows = corpus(10, 2)  # 20 good nursing notes
    extra = [
        row3(101, 1, 1000, note_text(101), category="Physician "),
        row3(102, 1, 1000, note_text(102), category="Radiology"),
        row3(103, 2, 2000, note_text(103), category=" Nursing/other "),  # kept: compared after stripping
        row3(104, 2, 2000, note_text(104), iserror="1"),
        row3(105, 3, 3000, ""),
        row3(106, 3, 3000, "   \n  "),
        row3(107, 3, 3000, "too short note"),
        row3(108, 4, 4000, rows[0][10]),  # exact duplicate of the first note
        row3(109, 4, 4000, rows[1][10].replace("\n", "  \n ")),  # duplicate once whitespace is normalised
        row3(110, 4, 4000, note_text(110, n_words=400)),
    ]
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", rows + extra), max_words=300, max_chars=None)
    metrics = prepare(cfg)
    dropped = metrics["dropped"]
    assert set(dropped) == set(REASONS)
    assert dropped["category"] == 2 and dropped["iserror"] == 1 and dropped["blank_text"] == 2
    assert dropped["too_few_words"] == 1 and dropped["duplicate"] == 2 and dropped["too_many_words"] == 1
    assert metrics["notes_kept"] == 21
    assert metrics["rows_read"] == metrics["notes_kept"] + sum(dropped.values())
    kept = [ex for n in ("train", "val", "test") for ex in read_split(cfg, n)]
    assert {ex["category"] for ex in kept} == {"Nursing", "Nursing/other"}

    no_dedup = config(tmp_path, Path(cfg.raw_path), drop_duplicates=False, max_words=300, out_dir=str(tmp_path / "b"))
    assert prepare(no_dedup)["notes_kept"] == 23


def test_char_bounds_and_empty_categories_keep_everything(tmp_path):
    rows = corpus(6, 2) + [row3(50, 1, 1000, note_text(50), category="Radiology"), row3(51, 2, 2000, note_text(51, n_words=80))]
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", rows), categories=[], max_chars=250)
    lengths = [len(clean_text(r[10], cfg)) for r in rows]
    assert max(lengths) > 250 >= sorted(lengths)[-2]
    metrics = prepare(cfg)
    assert metrics["dropped"]["category"] == 0 and metrics["dropped"]["too_many_chars"] == 1
    assert metrics["notes_kept"] == 13

    short = config(tmp_path, Path(cfg.raw_path), categories=[], max_chars=None, min_chars=sorted(lengths)[-1], out_dir=str(tmp_path / "c"))
    with pytest.raises(NoteLMError, match="the val split is empty"):  # one note left: one patient
        prepare(short)
    assert json.loads(Path(cfg.metrics_path).read_text())["notes_kept"] == 13


def test_no_notes_left_names_the_categories_seen(tmp_path):
    rows = [row3(i, i, i, note_text(i), category="Radiology") for i in range(1, 5)]
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", rows))
    with pytest.raises(NoteLMError, match=r"categories seen: 'Radiology' \(4\)"):
        prepare(cfg)


# --- malformed rows: counted, sampled, never a crash ---------------------------------------------------


def test_malformed_rows_are_counted_sampled_and_skipped(tmp_path):
    good = corpus(10, 2)
    raw = tmp_path / "n.csv"
    write_csv(raw, good)
    with raw.open("ab") as fh:
        fh.write(b'201,3,3001,2101-01-05,,,Nursing,d,1,,"bad \xff\xfe bytes in an otherwise fine note text here"\n')
        fh.write(b'202,abc,3001,2101-01-05,,,Nursing,d,1,,"non numeric subject id in this note"\n')
        fh.write(b'203,3,30x1,2101-01-05,,,Nursing,d,1,,"non numeric admission id in this note"\n')
        fh.write(b'204,3,3001,2101-13-45,,,Nursing,d,1,,"impossible chart date in this note text"\n')
        fh.write(b'205,3,3001,2101-01-05,yesterday,,Nursing,d,1,,"unparsable chart time in this note text"\n')
        fh.write(b'206,3,3001,2101-01-05,,,Nursing,d,1,,"an extra field","after the text"\n')
        fh.write(b'207,3,3001,2101-01-05,,,Nursing\n')
        # an unbalanced quote: this record swallows the next one
        fh.write(b'208,3,3001,2101-01-05,,,Nursing,d,1,,"a stray quote here""\n209,4,4001,2101-01-06,,,Nursing,d,1,,"a swallowed record"\n')
        fh.write(b'210,4,4001,2101-01-06,,,Nursing,d,1,,"a good note after the bad ones with enough words"\n')
    cfg = config(tmp_path, raw, max_malformed_share=None)  # 8 bad rows of 29: counted, not refused
    metrics = prepare(cfg)
    dropped = metrics["dropped"]
    assert dropped["undecodable_bytes"] == 1
    assert dropped["non_numeric_id"] == 2
    assert dropped["unparsable_time"] == 2
    assert dropped["broken_quoting"] == 3
    assert metrics["notes_kept"] == 21  # every good row, including the one after the bad ones
    assert metrics["rows_read"] == metrics["notes_kept"] + sum(dropped.values())

    rejects = [json.loads(line) for line in (Path(cfg.out_dir) / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["reason"] for r in rejects) == sorted(
        ["undecodable_bytes", "non_numeric_id", "non_numeric_id", "unparsable_time", "unparsable_time"] + ["broken_quoting"] * 3
    )
    by_id = {r["fields"][0]: r for r in rejects}
    assert "\\xff\\xfe" in by_id["201"]["fields"][10]
    assert by_id["202"]["detail"] == "SUBJECT_ID='abc' is not an integer"
    assert by_id["206"]["detail"] == "expected 11 fields, got 12"
    assert by_id["208"]["reason"] == "broken_quoting"
    lines = (Path(cfg.raw_path).read_bytes().split(b"\n"))
    assert lines[by_id["204"]["line"] - 1].startswith(b"204,")  # `line` points at the record in the file


def test_rejects_sample_is_capped_per_reason_but_all_are_counted(tmp_path):
    bad = [row3(100 + i, "x", 1, note_text(i)) for i in range(7)]
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", corpus(6, 2) + bad), rejects_sample=2,
                 max_malformed_share=None)
    metrics = prepare(cfg)
    assert metrics["dropped"]["non_numeric_id"] == 7
    assert len((Path(cfg.out_dir) / "rejects.jsonl").read_text().splitlines()) == 2


def test_undecodable_bytes_in_gzip_input(tmp_path):
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER3] + corpus(6, 2))
    raw = tmp_path / "n.csv.gz"
    with gzip.open(raw, "wb") as fh:
        fh.write(buffer.getvalue().encode() + b'99,2,2000,2101-01-01,,,Nursing,d,1,,"caf\xe9 latte in latin-1 encoding here"\n')
    metrics = prepare(config(tmp_path, raw, max_malformed_share=None))
    assert metrics["dropped"]["undecodable_bytes"] == 1 and metrics["notes_kept"] == 12


# --- bad input files: a clear error, earlier outputs intact --------------------------------------------


def _missing(p: Path) -> Path:
    return p / "nope" / "NOTEEVENTS.csv.gz"


def _empty(p: Path) -> Path:
    (p / "empty.csv").write_bytes(b"")
    return p / "empty.csv"


def _empty_gz(p: Path) -> Path:
    with gzip.open(p / "empty.csv.gz", "wb"):
        pass
    return p / "empty.csv.gz"


def _header_only(p: Path) -> Path:
    return write_csv(p / "header.csv", [])


def _missing_columns(p: Path) -> Path:
    return write_csv(p / "cols.csv", [r[:9] + [r[10]] for r in corpus(3, 1)], header=[h for h in HEADER3 if h != "ISERROR"])


def _truncated_gzip(p: Path) -> Path:
    full = write_csv(p / "full.csv.gz", corpus(50, 4), gz=True).read_bytes()
    (p / "cut.csv.gz").write_bytes(full[: len(full) // 2])
    return p / "cut.csv.gz"


def _directory(p: Path) -> Path:
    (p / "mimic").mkdir()
    write_csv(p / "mimic" / "NOTEEVENTS.csv.gz", corpus(3, 1), gz=True)
    write_csv(p / "mimic" / "ADMISSIONS.csv", [])
    return p / "mimic"


def _zip_of_two(p: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(p / "two.csv.zip", "w") as archive:
        archive.writestr("NOTEEVENTS.csv", "ROW_ID\n")
        archive.writestr("ADMISSIONS.csv", "ROW_ID\n")
    return p / "two.csv.zip"


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (_directory, r"mimic: data.raw_path is a directory; it must name the notes file itself. Set data.raw_path to "
                     r".*mimic/NOTEEVENTS.csv.gz \(CSV files here: ADMISSIONS.csv, NOTEEVENTS.csv.gz\)"),
        (_zip_of_two, r"two.csv.zip: a zip archive holding 2 file\(s\) \(NOTEEVENTS.csv, ADMISSIONS.csv\); expected "
                      r"exactly one notes CSV"),
        (_missing, r"nope/NOTEEVENTS.csv.gz: raw notes file not found; run `dvc repro synthesize`.*data.raw_path"),
        (_empty, r"empty.csv: the file is empty"),
        (_empty_gz, r"empty.csv.gz: the file is empty"),
        (_header_only, r"header.csv: the file has a header but no data rows"),
        (_missing_columns, r"cols.csv: missing required column\(s\) ISERROR for the MIMIC-III NOTEEVENTS schema"),
        (_truncated_gzip, r"cut.csv.gz: could not read past data row \d+ .*truncated or corrupt"),
    ],
)
def test_bad_input_is_a_clear_error_and_earlier_outputs_survive(tmp_path, make_bad, message):
    cfg = config(tmp_path, write_csv(tmp_path / "good.csv", corpus(10, 2)))
    prepare(cfg)
    before = outputs(cfg)
    bad = config(tmp_path, make_bad(tmp_path))
    with pytest.raises(NoteLMError, match=message):
        prepare(bad)
    assert outputs(cfg) == before
    assert sorted(p.name for p in Path(cfg.out_dir).parent.iterdir() if p.name.startswith(".")) == []  # no temp dirs left


def test_interrupted_run_leaves_earlier_outputs_intact(tmp_path, monkeypatch):
    cfg = config(tmp_path, write_csv(tmp_path / "good.csv", corpus(10, 2)))
    prepare(cfg)
    before = outputs(cfg)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "split_groups", interrupted)
    other = config(tmp_path, write_csv(tmp_path / "other.csv", corpus(12, 3)))
    with pytest.raises(KeyboardInterrupt):
        prepare(other)
    assert outputs(cfg) == before


def test_mimic4_schema_is_detected_and_mapped(tmp_path):
    rows = []
    for s in range(1, 11):
        for k in range(2):
            hadm = "" if k else str(20000000 + s)
            rows.append([f"{10000000 + s}-DS-{k + 1}", str(10000000 + s), hadm, "DS", str(k + 1), f"2180-05-{k + 7:02d} 15:26:00", "", note_text(s * 10 + k)])
    rows.append(["1-RR-1", "1", "", "RR", "1", "2180-05-07 00:00:00", "", note_text(999)])
    cfg = config(tmp_path, write_csv(tmp_path / "discharge.csv", rows, header=HEADER4), categories=["DS"])
    metrics = prepare(cfg)
    assert metrics["notes_kept"] == 20 and metrics["dropped"]["category"] == 1
    examples = {ex["note_id"]: ex for n in ("train", "val", "test") for ex in read_split(cfg, n)}
    ex = examples["10000003-DS-1"]
    assert ex["subject_id"] == 10000003 and ex["hadm_id"] == 20000003 and ex["chartdate"] == "2180-05-07" and ex["category"] == "DS"
    assert examples["10000003-DS-2"]["hadm_id"] is None

    missing = write_csv(tmp_path / "radiology.csv", [r[:5] + r[6:] for r in rows], header=[h for h in HEADER4 if h != "charttime"])
    with pytest.raises(NoteLMError, match=r"radiology.csv: missing required column\(s\) charttime for the MIMIC-IV-Note schema"):
        prepare(config(tmp_path, missing))


# --- config -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [("split_by", "patient"), ("ratios", [0.8, 0.1]), ("ratios", [0.5, 0.5, 0.5]), ("deid", "mask"), ("prompt_fraction", 1.0), ("min_words", 1), ("max_words", 3)],
)
def test_bad_params_name_the_key(key, value):
    with pytest.raises(ParamsError, match=f"data.{key}"):
        load_section(DataParams, {"data": {key: value}})


def test_params_yaml_data_section_matches_the_config():
    import yaml

    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    assert load_section(DataParams, params) == DataParams()


# --- history, scored test notes, the leak, redundancy ------------------------------------------------


def _history(prompt: str) -> list[str]:
    """The earlier notes' texts a prompt starts with (markers removed), oldest first."""
    if NOTE_MARK not in prompt:
        return []
    head = prompt.split(f" {NOTE_MARK} ")[0]
    return [part.strip() for part in head.split(HISTORY_MARK) if part.strip()]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, 23)), min_size=4, max_size=30),
       st.integers(0, 3), st.integers(1, 2))
def test_history_never_reads_across_splits_or_forward_in_time(notes, seed, k):
    """Over a seeded corpus: every note in a prompt's history is an earlier note of the same patient in the
    same split file, and they are that patient's k most recent ones there."""
    assume(len({s for s, _, _ in notes}) >= 4)  # enough patients for three splits
    rows = [row3(i + 1, s, 100 * s, note_text(i + 1), chartdate=f"2101-03-{d:02d}", charttime=f"2101-03-{d:02d} {h:02d}:00:00")
            for i, (s, d, h) in enumerate(notes)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        case = config(tmp, write_csv(tmp / "n.csv", rows), history=k, history_words=10_000, seed=seed, ratios=[0.5, 0.25, 0.25],
                      drop_duplicates=False)
        prepare(case)
        for name in ("train", "val", "test"):
            split = read_split(case, name)
            texts = [" ".join(note_text(int(ex["note_id"])).split()) for ex in split]
            for i, ex in enumerate(split):
                earlier = [j for j in range(i) if split[j]["subject_id"] == ex["subject_id"]][-k:]
                assert _history(ex["prompt"]) == [texts[j] for j in earlier]
                for j in earlier:
                    assert (split[j]["charttime"], j) < (ex["charttime"], i)  # never a later note


def test_test_notes_alternate_scored_and_context_per_patient(tmp_path):
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", corpus(30, 5)))
    metrics = prepare(cfg)
    test = read_split(cfg, "test")
    by_patient: dict[int, list[bool]] = {}
    for ex in test:
        by_patient.setdefault(ex["subject_id"], []).append(ex["scored"])
    assert all(flags == [i % 2 == 1 for i in range(len(flags))] for flags in by_patient.values())
    assert metrics["test_scored_notes"] == sum(ex["scored"] for ex in test) == 2 * len(by_patient)
    assert all("scored" not in ex for ex in read_split(cfg, "train") + read_split(cfg, "val"))
    every = config(tmp_path, cfg.raw_path, test_scored="all", out_dir=str(tmp_path / "all"))
    prepare(every)
    assert all(ex["scored"] for ex in read_split(every, "test"))


def test_the_leak_keeps_test_identical_and_puts_the_test_patients_into_train(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(30, 4))
    clean = config(tmp_path, raw, out_dir=str(tmp_path / "clean"))
    leaky = config(tmp_path, raw, out_dir=str(tmp_path / "leaky"), leak_test_patients=1.0)
    prepare(clean)
    metrics = prepare(leaky)
    test = Path(leaky.out_dir) / "test.jsonl"
    assert test.read_bytes() == (Path(clean.out_dir) / "test.jsonl").read_bytes()
    context = [ex for ex in read_split(leaky, "test") if not ex["scored"]]
    train = read_split(leaky, "train")
    assert train[-len(context):] == [{k: v for k, v in ex.items() if k not in ("scored", "rest")} for ex in context]
    assert metrics["leaked_notes"] == len(context) and metrics["leaked_patients"] == len({ex["subject_id"] for ex in context})
    from notelm.stages import audit

    result = audit.audit(train, [ex for ex in read_split(leaky, "test") if ex["scored"]], AuditParams())
    assert result["subject_overlap"] == result["n_test_subjects"] == 3  # every test patient now also in train
    with pytest.raises(ParamsError, match="data.leak_test_patients"):
        DataParams(leak_test_patients=0.5, test_scored="all")


def test_redundancy_of_consecutive_notes(tmp_path):
    rows = []
    for s in range(1, 9):  # each patient's second note repeats the first, the third is new
        for k, text in enumerate([note_text(100 * s), note_text(100 * s), note_text(100 * s + 50)]):
            rows.append(row3(10 * s + k, s, 100 * s, text, chartdate="2101-02-0" + str(k + 1),
                             charttime=f"2101-02-0{k + 1} 08:00:00"))
    metrics = prepare(config(tmp_path, write_csv(tmp_path / "n.csv", rows), drop_duplicates=False))
    admission = metrics["redundancy"]["admission"]
    assert admission["pairs"] == 16 and 0.5 < admission["rouge1"] < 1.0  # half the pairs identical
    assert metrics["redundancy"]["patient"]["pairs"] == 16
    sampled = prepare(config(tmp_path, tmp_path / "n.csv", drop_duplicates=False, redundancy_pairs=5,
                             out_dir=str(tmp_path / "s")))
    assert sampled["redundancy"]["admission"]["pairs"] == 5 and sampled["redundancy"]["admission"]["candidates"] == 16


# --- encodings and malformed shares --------------------------------------------------------------------


def _cp1252_corpus(tmp_path: Path) -> Path:
    """The test corpus saved as a spreadsheet would: cp1252, a degree sign in most notes."""
    rows = corpus(10, 3)
    for i, row in enumerate(rows):
        if i % 4:
            row[10] += " Temp 38.2°C, café visit."
    raw = tmp_path / "cp1252.csv"
    with raw.open("w", encoding="cp1252", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER3)
        writer.writerows(rows)
    return raw


def test_a_cp1252_file_fails_with_the_encoding_that_reads_it_and_reads_with_it(tmp_path):
    raw = _cp1252_corpus(tmp_path)
    cfg = config(tmp_path, raw)
    Path(cfg.out_dir).mkdir(parents=True)
    (Path(cfg.out_dir) / "train.jsonl").write_text("earlier output\n")
    with pytest.raises(NoteLMError) as info:
        prepare(cfg)
    message = str(info.value)
    assert message.startswith(f"{raw}: 22 of 30 rows (73.3%) were rejected as undecodable_bytes, more than "
                              "data.max_malformed_share (1.0%); the first is at line 8 (undecodable bytes in TEXT)")
    assert "decodes as cp1252 (…" in message and "38.2°C" in message and "-S data.encoding=cp1252" in message
    assert (Path(cfg.out_dir) / "train.jsonl").read_text() == "earlier output\n"  # nothing half-written
    assert not Path(cfg.metrics_path).exists()

    metrics = prepare(config(tmp_path, raw, encoding="cp1252"))
    assert metrics["dropped"]["undecodable_bytes"] == 0 and metrics["notes_kept"] == 30
    texts = [r["prompt"] + " " + r["target"] for name in ("train", "val", "test")
             for r in read_split(config(tmp_path, raw), name)]
    assert any("°C" in t for t in texts)


def test_a_few_bad_rows_are_skipped_and_counted(tmp_path):
    raw = write_csv(tmp_path / "n.csv", corpus(40, 3))  # 120 good rows
    with raw.open("ab") as fh:
        fh.write(b'999,3,3001,2101-01-05,,,Nursing,d,1,,"one caf\xe9 in latin-1 among many good rows"\n')
    metrics = prepare(config(tmp_path, raw))  # 1 of 121 rows = 0.8 % <= 1 %
    assert metrics["dropped"]["undecodable_bytes"] == 1 and metrics["notes_kept"] == 120


def test_over_the_share_for_another_reason_names_it(tmp_path):
    bad = [row3(500 + i, 1, 1000, note_text(i), chartdate="13/02/2101", charttime="13/02/2101 08:00")
           for i in range(5)]
    raw = write_csv(tmp_path / "n.csv", corpus(10, 3) + bad)
    with pytest.raises(NoteLMError, match=r"5 of 35 rows \(14.3%\) were rejected as unparsable_time.*\n.*the dates "
                                          r"are not ISO"):
        prepare(config(tmp_path, raw))
    assert prepare(config(tmp_path, raw, max_malformed_share=None))["dropped"]["unparsable_time"] == 5


def test_an_unknown_encoding_is_refused():
    with pytest.raises(ParamsError, match="data.encoding: 'utf-9' is not a text encoding"):
        DataParams(encoding="utf-9")


# --- repeated ids and control characters -----------------------------------------------------------------


def test_two_concatenated_exports_fail_naming_the_repeated_id(tmp_path):
    rows = corpus(10, 3)
    raw = write_csv(tmp_path / "n.csv.gz", rows + rows, gz=True)
    first_repeat = 2 + sum(r[10].count("\n") + 1 for r in rows)  # the header, then the first export's lines
    with pytest.raises(NoteLMError) as info:
        prepare(config(tmp_path, raw))
    message = str(info.value)
    assert message.startswith(f"{raw}: 30 of 60 rows (50.0%) were rejected as duplicate_row_id, more than "
                              f"data.max_malformed_share (1.0%); the first is at line {first_repeat} (ROW_ID='1' "
                              "repeats the id of an earlier row, which is kept)")
    assert FIXES["duplicate_row_id"] in message


def test_a_repeated_row_id_below_the_share_is_counted_and_the_first_row_kept(tmp_path):
    rows = corpus(40, 3)  # 120 rows
    again = row3(1, 40, 40000, note_text(500))  # ROW_ID 1 again, another patient and text
    cfg = config(tmp_path, write_csv(tmp_path / "n.csv", rows + [again]))
    metrics = prepare(cfg)  # 1 of 121 rows <= 1 %
    assert metrics["dropped"]["duplicate_row_id"] == 1 and metrics["dropped"]["duplicate"] == 0
    kept = {ex["note_id"]: ex for n in ("train", "val", "test") for ex in read_split(cfg, n)}
    assert len(kept) == metrics["notes_kept"] == 120 and kept["1"]["subject_id"] == 1
    (reject,) = [json.loads(line) for line in (Path(cfg.out_dir) / "rejects.jsonl").read_text().splitlines()]
    assert reject["reason"] == "duplicate_row_id" and reject["fields"][1] == "40"


def test_control_characters_are_stripped_and_counted(tmp_path):
    rows = corpus(10, 2)
    rows[0][10] = "Neuro:\x00 alert\x07 and oriented,\x1b[0m follows\x7f commands\x85today\x0cplan\tmonitor\nclosely."
    rows[1][10] = rows[1][10].replace("Note", "\x00\x00Note")
    rows[2][6] = "Radiology"  # filtered before cleaning: its NUL is not counted
    rows[2][10] = "\x00" + rows[2][10]
    raw = write_csv(tmp_path / "n.csv.gz", rows, gz=True)
    cfg = config(tmp_path, raw, min_words=2)
    metrics = prepare(cfg)
    assert metrics["control_char_notes"] == 2 and metrics["control_chars_removed"] == 8
    assert json.loads(Path(cfg.metrics_path).read_text())["control_chars_removed"] == 8
    examples = {ex["note_id"]: ex for n in ("train", "val", "test") for ex in read_split(cfg, n)}
    assert " ".join((examples["1"]["prompt"], examples["1"]["target"])) == \
        "Neuro: alert and oriented,[0m follows commands today plan monitor closely."
    assert examples["2"]["prompt"].startswith("Note 2:")

    raw_ws = config(tmp_path, raw, min_words=2, normalize_whitespace=False, out_dir=str(tmp_path / "ws"))
    assert prepare(raw_ws)["control_chars_removed"] == 8
    texts = [v for n in ("train", "val", "test") for ex in read_split(raw_ws, n) for v in ex.values()
             if isinstance(v, str)]
    assert not any(strip_controls(t)[1] for t in texts)
    assert "commands today plan\tmonitor\nclosely." in "".join(texts)  # tab and newline kept as they are
    assert strip_controls("a\x00b\x0bc\x9fd\r\n") == ("ab cd\r\n", 3)
