"""The `prepare` stage: raw MIMIC notes → cleaned, split prompt/target examples.

    python -m notelm.stages.prepare --raw data/raw/NOTEEVENTS.csv.gz --out data/prepared --metrics metrics/detail/data.json


Reads MIMIC-III `NOTEEVENTS.csv(.gz)` or a MIMIC-IV-Note CSV (`discharge.csv`,
`radiology.csv`), keeps the configured categories, cleans the text, splits the
notes into train/val/test by patient (or admission, or note), subsamples train
only, and writes `data/prepared/{train,val,test}.jsonl`, `rejects.jsonl` and
`metrics/detail/data.json`.

How it stays within memory on the full 4 GB NOTEEVENTS: the CSV is streamed
row by row; each kept note is turned into its JSON line at once and appended to
a spool file, and only a few integers per note (subject, admission, time,
offset, length, word counts) plus a 16-byte hash for de-duplication stay in
memory. Once every group is known, groups are assigned to splits and the lines
are copied from the spool into the sorted split files.

The workers live in library modules: reading and validating the CSV in `notelm.data.mimic`,
cleaning and cutting a note in `notelm.data.notes`, assigning groups to splits in `notelm.data.splits`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.data import DataParams
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_dir, write_json
from notelm.core.loader import load_section
from notelm.core.paths import DATA_METRICS, PREPARED_DIR, REJECTS_FILE, SPLITS, split_path
from notelm.data.history import Recent
from notelm.data.mimic import REASONS, Note, ReadStats, check_malformed, read_notes
from notelm.data.notes import CLEANING, clean_text, count_words, cut, filter_reason, make_example, strip_controls
from notelm.data.splits import group_keys, leaked_patients, split_groups, subsample_train
from notelm.evaluation.rouge import rouge_scores

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`

NOTE_FIELDS = ("note_id", "subject_id", "hadm_id", "category", "chartdate", "charttime", "text")


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


def _keep_reason(note: Note, cfg: DataParams, keep: set[str], seen: set[bytes],
                 cleaned: Counter) -> tuple[str | None, int]:
    """Clean `note.text` in place, counting the control characters removed in `cleaned`; return (why it is
    dropped — category, error, blank, length, duplicate — or None, its word count)."""
    if keep and note.category not in keep:
        return "category", 0
    if note.iserror:
        return "iserror", 0
    note.text, controls = strip_controls(note.text)
    if controls:
        cleaned["control_char_notes"] += 1
        cleaned["control_chars_removed"] += controls
    note.text = clean_text(note.text, cfg)
    if not note.text:
        return "blank_text", 0
    n_words = count_words(note.text, cfg)
    reason = filter_reason(note.text, n_words, cfg)
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
            reason, n_words = _keep_reason(note, cfg, keep, seen, stats.cleaned)
            if reason:
                stats.drop(reason)
                continue
            record = {k: getattr(note, k) for k in NOTE_FIELDS}
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            spool.write(line)
            p, end = cut(n_words, cfg)
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



def _assign(cfg: DataParams, kept: _Kept, raw_path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """({split: positions of its notes, sorted by subject, time, file order}, train pool before data.fraction)."""
    subject = kept.np("subject")
    order = np.lexsort((np.arange(len(subject)), kept.np("when"), subject))
    groups = group_keys(cfg.split_by, subject, kept.np("hadm"))
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
    alternate`, every second note of a patient (its 2nd, 4th, ...) is `scored`; the others are its context.
    Test rows also hold `rest`, the whole note after the prompt."""
    recent = Recent(cfg.history)
    current, position = None, 0
    for i in indices.tolist():
        note = spool.note(i)
        position = position + 1 if note.subject_id == current else 0
        current = note.subject_id
        example = make_example(note, cfg, recent.before(note.subject_id), rest=test)
        if test:
            example["scored"] = cfg.test_scored == "all" or position % 2 == 1
        yield example
        recent.add(note.text)


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
                    leaked.append((json.dumps({k: v for k, v in example.items() if k not in ("scored", "rest")},
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
        **{key: stats.cleaned.get(key, 0) for key in CLEANING},
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


@dataclass(frozen=True)
class Paths:
    """The prepare stage's input and outputs."""

    raw: str | None = None
    """The notes CSV(.gz) (default: data.raw_path in params.yaml, the one input path that is a param)."""
    out: str = PREPARED_DIR
    """Split directory: train, val and test JSON Lines, and the sampled rejects."""
    metrics: str = DATA_METRICS
    """Data metrics: counts, lengths, reasons for dropped rows, control characters removed, redundancy."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The prepare stage: `data:` params, notes from `paths.raw` (default data.raw_path) → `paths.out`/ and
    the `paths.metrics` file."""
    cfg = load_section(DataParams, params)
    result = prepare(cfg, paths.raw or cfg.raw_path, paths.out)
    write_json(paths.metrics, result)
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("prepare", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
