"""Training data: the token blocks the train stage fine-tunes on, made from a prepared JSONL split.

Each training text is a whole example (`prompt + " " + target` + EOS, see `training_text`). With packing the
tokenised texts are concatenated and cut into `max_length` blocks, so no compute goes to padding; without it
each text is padded to `max_length`. `build_dataset` streams a split into a memory-mapped `datasets.Dataset`
(cached under BLOCKS_CACHE) and `collate_blocks` makes the labels of a batch.

Used by the train stage (notelm.stages.train), notelm.training.trainer (the default collator) and benchmarks/.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from notelm.core.errors import NoteLMError
from notelm.core.paths import BLOCKS_CACHE
from notelm.training import checkpoints


def training_text(row: dict[str, Any], eos: str, canaries: list[str] = ()) -> str:
    """The training text of an example: the note (`prompt + " " + target`), any canary sentences planted in it
    (notelm.training.canaries), then EOS."""
    return " ".join([f"{row['prompt']} {row['target']}".strip(), *canaries]) + eos


def blocks(texts: Iterable[str], tokenizer, max_length: int, packing: bool,
           batch: int = 1000) -> Iterator[dict[str, list[int]]]:
    """Token blocks for causal-LM training, {input_ids, attention_mask} each, tokenising `batch` texts at a time
    so memory does not grow with the corpus.

    packing=True: all texts concatenated and cut into full `max_length` blocks (the tail that does not fill a
    block is dropped; a corpus shorter than one block yields one short block).
    packing=False: each text truncated and right-padded to `max_length`; the mask marks the padding, which
    `collate_blocks` leaves unscored.
    """
    pad, carry, emitted = tokenizer.pad_token_id, [], False
    texts = iter(texts)
    while chunk := list(itertools.islice(texts, batch)):
        for seq in tokenizer(chunk, add_special_tokens=True)["input_ids"]:
            if not packing:
                seq = seq[:max_length]
                fill = max_length - len(seq)
                yield {"input_ids": seq + [pad] * fill, "attention_mask": [1] * len(seq) + [0] * fill}
                continue
            carry.extend(seq)
            while len(carry) >= max_length:
                yield {"input_ids": carry[:max_length], "attention_mask": [1] * max_length}
                carry, emitted = carry[max_length:], True
    if packing and not emitted and carry:
        yield {"input_ids": carry, "attention_mask": [1] * len(carry)}


def in_one_block(lengths: list[int], max_length: int, packing: bool) -> Callable[[int, int, int], bool]:
    """`inside(i, start, end)`: whether tokens [start, end) of text i lie inside one block, trained whole, when
    `blocks` cuts texts of these token `lengths` (packing: the texts one after another, cut every `max_length`
    tokens, the tail that fills no block dropped; else each text its own block, truncated)."""
    if not packing:
        return lambda i, start, end: end <= min(lengths[i], max_length)
    starts = list(itertools.accumulate([0, *lengths]))
    trained = starts[-1] - starts[-1] % max_length or starts[-1]  # one short block when the corpus fills none

    def inside(i: int, start: int, end: int) -> bool:
        first, last = starts[i] + start, starts[i] + end - 1
        return end <= lengths[i] and last < trained and first // max_length == last // max_length

    return inside


def collate_blocks(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of equal-length blocks as tensors, with labels = input_ids where the mask is 1, else -100
    (labels are made here rather than stored: the dataset holds every token once)."""
    import torch

    ids = torch.tensor([f["input_ids"] for f in features])  # B × T
    mask = torch.tensor([f["attention_mask"] for f in features])  # B × T
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def end_marker(tokenizer) -> str:
    """What ends a training note: the EOS token, unless the tokenizer already ends every text with it (a BERT-style
    tokenizer appends [SEP], which prepare_tokenizer makes its EOS)."""
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return "" if ids and ids[-1] == tokenizer.eos_token_id else tokenizer.eos_token or ""


def _split_blocks(path: str, tokenizer, max_length: int, packing: bool, canaries: dict[int, list[str]]):
    """The generator `build_dataset` hands to `datasets`."""
    eos = end_marker(tokenizer)
    with open(path, encoding="utf-8") as fh:
        rows = (json.loads(line) for line in fh if line.strip())
        texts = (training_text(row, eos, canaries.get(i, [])) for i, row in enumerate(rows))
        yield from blocks(texts, tokenizer, max_length, packing)


def count_examples(path: Path) -> int:
    """Examples (non-blank lines) in a prepared JSONL split."""
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def build_dataset(path: Path, tokenizer, max_length: int, packing: bool, cache_dir: str | Path = BLOCKS_CACHE,
                  canaries: dict[int, list[str]] | None = None):
    """A memory-mapped `datasets.Dataset` of token blocks from a prepared JSONL split, written as a stream (peak
    memory does not grow with the split) into `cache_dir` and reused while the split's bytes, the tokenizer, the
    block settings, the planted `canaries` ({example index: sentences}, notelm.training.canaries.placements) and the
    training code are all unchanged (an explicit fingerprint: `datasets` would otherwise hash the generator by
    name only when this module is imported)."""
    from datasets import Dataset, Features, List, Value
    from datasets.fingerprint import Hasher

    empty = NoteLMError(f"{path}: no examples; check data.* filters and data.fraction, then `dvc repro prepare`")
    if not path.is_file():
        raise NoteLMError(f"{path}: prepared split not found; run `dvc repro prepare` first")
    with path.open(encoding="utf-8") as fh:  # stops at the first example; reads on only through blank lines
        if not any(line.strip() for line in fh):
            raise empty
    key = [checkpoints.hash_files([path]), checkpoints.hash_files(list(checkpoints.TRAINING_CODE)),
           Hasher.hash(tokenizer), max_length, packing, sorted((canaries or {}).items())]
    features = Features({"input_ids": List(Value("int32")), "attention_mask": List(Value("int8"))})
    dataset = Dataset.from_generator(_split_blocks, features=features, cache_dir=str(cache_dir),
                                     fingerprint=Hasher.hash(key),
                                     gen_kwargs={"path": str(path), "tokenizer": tokenizer, "max_length": max_length,
                                                 "packing": packing, "canaries": canaries or {}})
    return dataset

