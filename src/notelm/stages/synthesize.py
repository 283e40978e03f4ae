"""The `synthesize` stage: a synthetic MIMIC-III NOTEEVENTS corpus, the pipeline's offline default input.

Generates the rows that the `synthetic:` params describe with :mod:`notelm.data.synthetic` (patients with
their own profiles, admissions whose severity trajectory drives day and night nursing progress notes
written system by system and carried forward from note to note, plus Physician, Radiology, ECG and
Discharge summary rows, a few ``ISERROR=1`` rows and a couple of blank rows so that prepare's filters
have work; the words live in :mod:`notelm.data.synthetic_vocab`) and writes them here in the NOTEEVENTS
schema (`COLUMNS`) for prepare to read.

Everything is drawn from one ``random.Random(seed)``, and the gzip header carries no time or file name,
so the same params give a byte-identical file.

    python -m notelm.stages.synthesize --out data/raw/NOTEEVENTS.csv.gz
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.synthetic import SyntheticParams
from notelm.core import runner
from notelm.core.files import atomic_open
from notelm.core.loader import load_section
from notelm.core.paths import SYNTHETIC_NOTES
from notelm.data.synthetic import corpus_stats, generate_rows

COLUMNS = (  # MIMIC-III NOTEEVENTS, in its order; the keys of every row notelm.data.synthetic generates
    "ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CHARTTIME", "STORETIME",
    "CATEGORY", "DESCRIPTION", "CGID", "ISERROR", "TEXT",
)


def write_corpus(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write `rows` as a NOTEEVENTS CSV to `path` atomically (gzip when it ends in .gz); return the row count.

    Columns are exactly `COLUMNS`, quoting is minimal (multi-line TEXT is quoted), lines end in '\\n', and
    the gzip header has no time or file name, so equal rows give byte-identical files. If anything fails
    midway, the file previously at `path` is left untouched.
    """
    n = 0
    with atomic_open(path, "wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if str(path).endswith(".gz") else None
        text = io.TextIOWrapper(gz or raw, encoding="utf-8", newline="")
        writer = csv.DictWriter(text, fieldnames=COLUMNS, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
        text.flush()
        text.detach()
        if gz is not None:
            gz.close()
    return n


@dataclass(frozen=True)
class Paths:
    """The synthesize stage's output."""

    out: str = SYNTHETIC_NOTES
    """The corpus, in the MIMIC-III NOTEEVENTS schema (gzip when the name ends in .gz)."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The synthesize stage: generate the corpus of `params['synthetic']` and write it to `paths.out`.

    Returns the corpus counts of :func:`corpus_stats`.
    """
    cfg = load_section(SyntheticParams, params)
    rows = generate_rows(cfg)
    write_corpus(rows, paths.out)
    return corpus_stats(rows)


def main(argv: list[str] | None = None) -> int:
    return runner.main("synthesize", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
