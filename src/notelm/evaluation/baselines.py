"""The model-free baselines evaluate scores beside the models: a registry, one entry per baseline name.

Each entry (`REGISTRY[name]`) holds the function that builds the baseline's continuation of every test prompt
from the prepared splits alone (no model). The names are names.BASELINE_NAMES (the keys of eval.json's
`baselines`, which the params checker accepts); what each stands for, in a line, is labels.BASELINE_DOC (the
report prints it). Promises:

- each reads only what names.BASELINE_READS says (the chart baselines: the scored prompt and the same
  patient's earlier notes of the test split, never the scored note's rest or a later note);
- `baselines(...)` builds the continuations of the names asked for, in that order, deterministically
  (chance is seeded by `evaluate.seed`);
- importing this module is cheap (no numpy, sklearn or ROUGE at import time); the heavy parts are imported
  inside the functions that use them.

Used by src/notelm/evaluation/examples.py (read_examples builds the baselines of an evaluate run); the stage's story of
what each baseline stands for is in src/notelm/stages/evaluate.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notelm.config.names import BASELINE_READS, note_part
from notelm.core.errors import NoteLMError
from notelm.data.history import earlier


def copy_last_sentence(prompt: str) -> str:
    """The prompt's last complete sentence (ending in . ! ?); the last fragment if it has none."""
    from notelm.evaluation.rouge import split_sentences

    sents = split_sentences(prompt)
    complete = [s for s in sents if s[-1] in ".!?"]
    return (complete or sents or [""])[-1]


def chance_targets(train_rows: list[dict], n: int, seed: int) -> list[str]:
    """The targets of `n` train notes drawn at random (seeded, with replacement)."""
    import numpy as np

    picks = np.random.default_rng([seed, 7]).integers(0, len(train_rows), size=n)
    return [train_rows[i]["target"] for i in picks]


def copy_forward(rows: list[dict], split_rows: list[dict], fallback: list[str]) -> tuple[list[str], int]:
    """(each row's continuation: the target of its patient's most recent earlier note of the test split
    `split_rows` — context notes included —, i.e. that note's words after *its own* prompt cut, which need not
    be where this row's prompt ends; how many rows fell back to `fallback` for want of an earlier note)."""
    previous = dict(zip((r["note_id"] for r in split_rows), earlier(split_rows, k=1)))
    out, fallbacks = [], 0
    for i, row in enumerate(rows):
        before = previous.get(row["note_id"])
        out.append(split_rows[before[0]]["target"] if before else fallback[i])
        fallbacks += not before
    return out, fallbacks


ALIGN_MIN_WORDS = 2  # the shortest run of words that anchors an alignment: single shared words are chance


def _key(word: str) -> str:
    return word.lower().strip(".,;:!?()[]\"'")


def align(prompt_words: list[str], source_words: list[str]) -> tuple[int, int]:
    """(where in `source_words` the prompt's end falls, how many words the anchoring match holds).

    The whole prompt is aligned to the source word by word (case and surrounding punctuation ignored) with
    difflib's SequenceMatcher (stdlib; autojunk off, so frequent words still match). Its last matching run of
    at least ALIGN_MIN_WORDS words anchors the prompt's end: the position is that run's end in the source, moved
    on by the prompt words that follow the run. With no such run, the position is the prompt's length in words
    (0 words matched). The position always leaves at least one source word to copy.

    Chosen on this project's synthetic test notes among a few rules (the prompt's last 1–24 words matched
    exactly, nearest/first/last match; the whole prompt aligned, runs of 1–3 words): as a bar, its strongest
    form makes a claim about a model harder, never easier.
    """
    from difflib import SequenceMatcher

    keys, tail = [_key(w) for w in source_words], [_key(w) for w in prompt_words]
    if not keys:
        return 0, 0
    runs = [m for m in SequenceMatcher(None, tail, keys, autojunk=False).get_matching_blocks()
            if m.size >= ALIGN_MIN_WORDS]
    if not runs:
        return min(len(tail), len(keys) - 1), 0
    last = runs[-1]
    return min(last.b + last.size + len(tail) - (last.a + last.size), len(keys) - 1), last.size


def chart_text(row: dict) -> str:
    """An earlier note as the chart holds it: its own prompt (without history) and its whole rest."""
    return f"{note_part(row['prompt'])} {row.get('rest', row['target'])}".strip()


def aligned_copy(rows: list[dict], split_rows: list[dict], fallback: list[str], cap: int | None) -> tuple[list[str], int]:
    """(each row's continuation: the words that follow, in its patient's most recent earlier note of the test
    split, the place where this row's prompt ends (`align`), at most `cap`; how many rows fell back to
    `fallback` for want of an earlier note). It reads the row's prompt and that earlier note, nothing else."""
    previous = dict(zip((r["note_id"] for r in split_rows), earlier(split_rows, k=1)))
    out, fallbacks = [], 0
    for i, row in enumerate(rows):
        before = previous.get(row["note_id"])
        if not before:
            out.append(fallback[i])
            fallbacks += 1
            continue
        source = chart_text(split_rows[before[0]]).split()
        at, _ = align(note_part(row["prompt"]).split(), source)
        out.append(" ".join(source[at:at + cap] if cap is not None else source[at:]))
    return out, fallbacks


# ------------------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Inputs:
    """What a baseline may read: the train split, the scored test rows, the whole test split (context notes
    included), the chance targets of the test rows (built once, seeded; [] when the train split is empty) and
    the references' word cap."""

    train_rows: list[dict]
    test_rows: list[dict]
    split_rows: list[dict]
    chance: list[str]
    cap: int | None = None


@dataclass(frozen=True)
class Baseline:
    """One baseline: its builder, which gives (continuation per test row, how many rows fell back to chance),
    and its name, whose names.BASELINE_READS says what it reads."""

    build: Callable[[Inputs], tuple[list[str], int]]
    name: str

    @property
    def needs_train(self) -> bool:
        return "train" in BASELINE_READS[self.name]


def _chance(x: Inputs) -> tuple[list[str], int]:
    return x.chance, 0


def _copy_forward(x: Inputs) -> tuple[list[str], int]:
    return copy_forward(x.test_rows, x.split_rows, x.chance)


def _aligned_copy(x: Inputs) -> tuple[list[str], int]:
    return aligned_copy(x.test_rows, x.split_rows, x.chance, x.cap)


def _prompt_tail(x: Inputs) -> tuple[list[str], int]:
    return [" ".join(r["prompt"].split()[-len(r["target"].split()):]) for r in x.test_rows], 0


def _retrieval(x: Inputs) -> tuple[list[str], int]:
    from notelm.evaluation.retrieval import retrieve_nearest  # numpy + sklearn: only when this baseline is built

    nearest = retrieve_nearest([r["prompt"] for r in x.train_rows], [r["prompt"] for r in x.test_rows])
    return [x.train_rows[i]["target"] for i in nearest], 0


def _copy_last_sentence(x: Inputs) -> tuple[list[str], int]:
    return [copy_last_sentence(r["prompt"]) for r in x.test_rows], 0


REGISTRY: dict[str, Baseline] = {  # one builder per name of names.BASELINE_NAMES, in that order (tested)
    "chance": Baseline(_chance, "chance"),
    "copy_forward": Baseline(_copy_forward, "copy_forward"),
    "aligned_copy": Baseline(_aligned_copy, "aligned_copy"),
    "prompt_tail": Baseline(_prompt_tail, "prompt_tail"),
    "retrieval": Baseline(_retrieval, "retrieval"),
    "copy_last_sentence": Baseline(_copy_last_sentence, "copy_last_sentence"),
}


def baselines(kinds: list[str], train_rows: list[dict], test_rows: list[dict], seed: int,
              split_rows: list[dict] | None = None, cap: int | None = None) -> tuple[dict[str, list[str]], int]:
    """({baseline: continuation per test row}, test rows without an earlier note, for which the chart
    baselines fell back to chance), built without any model; the chart baselines look for earlier notes among
    `split_rows` (the whole test split, default `test_rows`); `cap` caps aligned_copy's words."""
    unknown = [k for k in kinds if k not in REGISTRY]
    if unknown:
        raise NoteLMError(f"baselines: unknown baseline(s) {unknown}; choose from {list(REGISTRY)}")
    if not train_rows and any(REGISTRY[k].needs_train for k in kinds):
        raise NoteLMError("baselines: the train split is empty")
    chance = chance_targets(train_rows, len(test_rows), seed) if train_rows else []
    inputs = Inputs(train_rows, test_rows, split_rows or test_rows, chance, cap)
    out: dict[str, list[str]] = {}
    fallbacks = 0
    for kind in dict.fromkeys(kinds):  # a name given twice is built once
        out[kind], fell_back = REGISTRY[kind].build(inputs)
        fallbacks = max(fallbacks, fell_back)  # the chart baselines fall back on the same rows
    return out, fallbacks
