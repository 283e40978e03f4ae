"""The examples evaluate scores: the test notes every generations file covers, and each system's continuation.

Promise: `read_examples` reads the prepared test split and the generations files, cross-checks them (every file
covers the same test notes, its references are the test targets, no completion repeats its prompt — each
failure a NoteLMError naming the file, row and note), builds the asked-for baselines (src/notelm/evaluation/baselines.py)
and cuts every continuation, model or baseline, at the references' word cap, keeping how many words each
wrote before the cut. Rows come in test-split order. Used by the evaluate stage (src/notelm/stages/evaluate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import scored
from notelm.core.errors import NoteLMError
from notelm.core.files import read_jsonl
from notelm.core.paths import split_path, variant_of
from notelm.data.history import earlier
from notelm.evaluation.baselines import baselines, chart_text

GENERATION_FIELDS = ["note_id", "prompt", "reference", "completion"]


def cut_words(text: str, cap: int | None) -> str:
    """`text` cut to its first `cap` words (None: as it is)."""
    return text if cap is None else " ".join(text.split()[:cap])


def _read_rows(path: Path, fields: list[str], hint: str) -> list[dict]:
    if not path.is_file():
        raise NoteLMError(f"{path}: file not found ({hint})")
    try:
        rows = read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise NoteLMError(f"{path}: {exc}") from exc
    for i, row in enumerate(rows, 1):
        missing = [f for f in fields if not isinstance(row.get(f), str)]
        if missing:
            raise NoteLMError(f"{path}: row {i}: missing or non-string field(s) {missing}")
    return rows


def _load_generations(path: Path, test_by_id: dict[str, dict]) -> dict[str, dict]:
    rows = _read_rows(path, GENERATION_FIELDS, "run the generate stage first (`dvc repro generate_<variant>`)")
    if not rows:
        raise NoteLMError(f"{path}: no generations")
    by_id = {}
    for i, row in enumerate(rows, 1):
        nid = row["note_id"]
        where = f"{path}: row {i} (note_id {nid})"
        if nid in by_id:
            raise NoteLMError(f"{where}: duplicate note_id")
        test = test_by_id.get(nid)
        if test is None:
            raise NoteLMError(f"{where}: not in the test split; the generations are stale, re-run generate")
        if row["reference"].strip() != test["target"].strip():
            raise NoteLMError(f"{where}: reference differs from the test target; generations are stale, re-run generate")
        completion = row["completion"].strip()
        for prompt in {row["prompt"].strip(), test["prompt"].strip()}:
            if prompt and completion.startswith(prompt):
                raise NoteLMError(f"{where}: completion starts with the prompt; generate must write only the continuation")
        by_id[nid] = row
    return by_id


@dataclass
class Examples:
    """The test examples every generations file covers (in test-split order) and each system's continuation."""

    rows: list[dict]                    # the test examples
    generations: dict[str, list[dict]]  # variant -> generation rows, in `rows` order
    systems: dict[str, list[str]]       # variant or baseline -> continuation per example, cut at the cap
    raw_words: dict[str, list[int]] = field(default_factory=dict)  # words each system wrote before the cut
    fallbacks: int = 0                  # rows without an earlier note (the chart baselines fell back to chance)
    charts: list[str] = field(default_factory=list)  # per example: its prompt and the patient's earlier notes

    @property
    def refs(self) -> list[str]:
        return [r["target"] for r in self.rows]

    @property
    def rests(self) -> list[str]:
        """The whole rest of each note after its prompt (`rest`; the target where the split has none)."""
        return [r.get("rest") or r["target"] for r in self.rows]

    @property
    def models(self) -> list[str]:
        return list(self.generations)


def read_examples(cfg: EvaluateParams, generation_paths: list[Path], prepared: Path, cap: int | None) -> Examples:
    """Read and cross-check the test split and the generations; build the baselines; cut everything at `cap`."""
    split_rows = _read_rows(split_path("test", prepared), ["note_id", "prompt", "target"], "run the prepare stage first")
    test_rows = scored(split_rows)
    test_by_id = {r["note_id"]: r for r in test_rows}
    gens = {variant_of(path): (path, _load_generations(path, test_by_id)) for path in generation_paths}
    first_path, first = next(iter(gens.values()))
    for path, by_id in gens.values():
        if set(by_id) != set(first):
            only = sorted(set(by_id) ^ set(first))[:3]
            raise NoteLMError(f"{path} and {first_path} cover different test notes (e.g. {only}); re-run generate")
    rows = [r for r in test_rows if r["note_id"] in first]
    generations = {v: [by_id[r["note_id"]] for r in rows] for v, (_, by_id) in gens.items()}
    raw = {v: [g["completion"] for g in rows_] for v, rows_ in generations.items()}
    fallbacks = 0
    if cfg.baselines:
        train_rows = _read_rows(split_path("train", prepared), ["prompt", "target"], "run the prepare stage first")
        built, fallbacks = baselines(cfg.baselines, train_rows, rows, cfg.seed, split_rows, cap)
        raw.update(built)
    return Examples(rows, generations, {name: [cut_words(t, cap) for t in texts] for name, texts in raw.items()},
                    {name: [len(t.split()) for t in texts] for name, texts in raw.items()}, fallbacks,
                    charts(rows, split_rows))


def charts(rows: list[dict], split_rows: list[dict]) -> list[str]:
    """Per row, what its chart holds when the rest of the note is written: the row's prompt and the whole text of
    every earlier note of the same patient in the split (`split_rows`), never this note's rest or a later note."""
    before = dict(zip((r["note_id"] for r in split_rows), earlier(split_rows, k=len(split_rows))))
    return [" ".join([row["prompt"], *(chart_text(split_rows[j]) for j in before.get(row["note_id"], []))])
            for row in rows]

