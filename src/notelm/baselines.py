"""The model-free baselines evaluate scores beside the models: a registry, one entry per baseline name.

Each entry (`REGISTRY[name]`) holds the function that builds the baseline's continuation of every test prompt
from the prepared splits alone (no model). The names are names.BASELINE_NAMES (the keys of eval.json's
`baselines`, which the params checker accepts); what each stands for, in a line, is labels.BASELINE_DOC (the
report prints it). Promises:

- `baselines(...)` builds the continuations of the names asked for, in that order, deterministically
  (chance is seeded by `evaluate.seed`);
- importing this module is cheap (no numpy, sklearn or ROUGE at import time); the heavy parts are imported
  inside the functions that use them.

Used by src/notelm/examples.py (read_examples builds the baselines of an evaluate run); the stage's story of
what each baseline stands for is in src/notelm/stages/evaluate.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notelm.errors import NoteLMError
from notelm.history import earlier


def copy_last_sentence(prompt: str) -> str:
    """The prompt's last complete sentence (ending in . ! ?); the last fragment if it has none."""
    from notelm.rouge import split_sentences

    sents = split_sentences(prompt)
    complete = [s for s in sents if s[-1] in ".!?"]
    return (complete or sents or [""])[-1]


def chance_targets(train_rows: list[dict], n: int, seed: int) -> list[str]:
    """The targets of `n` train notes drawn at random (seeded, with replacement)."""
    import numpy as np

    picks = np.random.default_rng([seed, 7]).integers(0, len(train_rows), size=n)
    return [train_rows[i]["target"] for i in picks]


def copy_forward(rows: list[dict], split_rows: list[dict], fallback: list[str]) -> tuple[list[str], int]:
    """(each row's continuation from its patient's most recent earlier note of the test split `split_rows` —
    context notes included —, how many fell back to `fallback` for want of one)."""
    previous = dict(zip((r["note_id"] for r in split_rows), earlier(split_rows, k=1)))
    out, fallbacks = [], 0
    for i, row in enumerate(rows):
        before = previous.get(row["note_id"])
        out.append(split_rows[before[0]]["target"] if before else fallback[i])
        fallbacks += not before
    return out, fallbacks


# ------------------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Inputs:
    """What a baseline may read: the train split, the scored test rows, the whole test split (context notes
    included) and the chance targets of the test rows (built once, seeded; [] when the train split is empty)."""

    train_rows: list[dict]
    test_rows: list[dict]
    split_rows: list[dict]
    chance: list[str]


@dataclass(frozen=True)
class Baseline:
    """One baseline: its builder, which gives (continuation per test row, how many rows fell back to chance),
    and whether it reads the train split."""

    build: Callable[[Inputs], tuple[list[str], int]]
    needs_train: bool = False


def _chance(x: Inputs) -> tuple[list[str], int]:
    return x.chance, 0


def _copy_forward(x: Inputs) -> tuple[list[str], int]:
    return copy_forward(x.test_rows, x.split_rows, x.chance)


def _prompt_tail(x: Inputs) -> tuple[list[str], int]:
    return [" ".join(r["prompt"].split()[-len(r["target"].split()):]) for r in x.test_rows], 0


def _retrieval(x: Inputs) -> tuple[list[str], int]:
    from notelm.retrieval import retrieve_nearest  # numpy + sklearn: only when this baseline is built

    nearest = retrieve_nearest([r["prompt"] for r in x.train_rows], [r["prompt"] for r in x.test_rows])
    return [x.train_rows[i]["target"] for i in nearest], 0


def _copy_last_sentence(x: Inputs) -> tuple[list[str], int]:
    return [copy_last_sentence(r["prompt"]) for r in x.test_rows], 0


REGISTRY: dict[str, Baseline] = {  # one builder per name of names.BASELINE_NAMES, in that order (tested)
    "chance": Baseline(_chance, needs_train=True),
    "copy_forward": Baseline(_copy_forward, needs_train=True),
    "prompt_tail": Baseline(_prompt_tail),
    "retrieval": Baseline(_retrieval, needs_train=True),
    "copy_last_sentence": Baseline(_copy_last_sentence),
}


def baselines(kinds: list[str], train_rows: list[dict], test_rows: list[dict], seed: int,
              split_rows: list[dict] | None = None) -> tuple[dict[str, list[str]], int]:
    """({baseline: continuation per test row}, copy-forward fallbacks), built without any model; copy-forward
    looks for earlier notes among `split_rows` (the whole test split, default `test_rows`)."""
    unknown = [k for k in kinds if k not in REGISTRY]
    if unknown:
        raise NoteLMError(f"baselines: unknown baseline(s) {unknown}; choose from {list(REGISTRY)}")
    if not train_rows and any(REGISTRY[k].needs_train for k in kinds):
        raise NoteLMError("baselines: the train split is empty")
    chance = chance_targets(train_rows, len(test_rows), seed) if train_rows else []
    inputs = Inputs(train_rows, test_rows, split_rows or test_rows, chance)
    out: dict[str, list[str]] = {}
    fallbacks = 0
    for kind in dict.fromkeys(kinds):  # a name given twice is built once (its fallbacks counted once)
        out[kind], fell_back = REGISTRY[kind].build(inputs)
        fallbacks += fell_back
    return out, fallbacks
