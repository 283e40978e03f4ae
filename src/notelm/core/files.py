"""Reading and writing the pipeline's files: JSON, JSON Lines, and atomic writers for files and directories.

Writers never write in place: they write a temporary file (or directory) beside the target and rename it over
the target once complete, so an interrupted run leaves the previous output intact. Readers raise NoteLMError
naming the file and line. Every stage imports this module: keep it to file handling.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from notelm.core.errors import NoteLMError
from notelm.core.paths import LOGS


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file beside `path`; on clean exit fsync and rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs get the usual permissions
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temp directory beside `path`; on clean exit it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes an owner-only directory
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` as JSON Lines to `path` atomically; return the number of rows written."""
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def write_timing(stage: str, record: dict[str, Any]) -> Path:
    """Write a stage's wall-clock figures to logs/<stage>.json: never into a DVC output, whose hash would then
    change on every run although the results did not."""
    path = Path(LOGS) / f"{stage}.json"
    write_json(path, record)
    return path


# ------------------------------------------------------------------------------------------ reading
def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream a JSON Lines file row by row; a bad line raises NoteLMError naming the file and line."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise NoteLMError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a whole JSON Lines file; a bad line raises NoteLMError naming the file and line."""
    return list(iter_jsonl(path))


def read_json(path: str | Path, hint: str | None = None) -> dict[str, Any] | None:
    """A JSON object from `path`; None when the file is absent and no `hint` is given, else NoteLMError
    naming the file and the hint (what produces it). Invalid JSON or a non-object raises NoteLMError."""
    path = Path(path)
    if not path.is_file():
        if hint is None:
            return None
        raise NoteLMError(f"{path}: file not found; {hint}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NoteLMError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise NoteLMError(f"{path}: expected a JSON object at the top level")
    return obj
