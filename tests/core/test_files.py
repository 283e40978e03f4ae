"""core/files.py: atomic writers leave the previous output whole when interrupted; readers name the file and line."""

from __future__ import annotations

import pytest

from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_dir, atomic_open, read_json, read_jsonl, write_json, write_jsonl


def test_an_interrupted_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert read_json(path) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_an_interrupted_directory_keeps_the_previous_one(tmp_path):
    out = tmp_path / "d"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "x").write_text("2")
        raise RuntimeError("killed")
    assert (out / "x").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_readers_name_the_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"b": 2}]) == 2
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(NoteLMError, match=r"rows\.jsonl:2: not valid JSON"):
        read_jsonl(path)
    assert read_json(tmp_path / "absent.json") is None
    with pytest.raises(NoteLMError, match=r"absent\.json: file not found; run dvc repro"):
        read_json(tmp_path / "absent.json", "run dvc repro")
