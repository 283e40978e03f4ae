"""The token blocks (notelm.training.blocks) on a tiny tokenizer: packing, padding, streaming, the dataset cache."""

from __future__ import annotations

import itertools
import json

import pytest

from notelm.core.errors import NoteLMError
from notelm.training.blocks import blocks, build_dataset, collate_blocks, in_one_block, training_text
from tests.tiny import make_tokenizer


def test_packing_fills_blocks_and_padding_is_not_scored():
    tok = make_tokenizer()
    texts = [training_text({"prompt": "Pt alert", "target": "and oriented x3."}, tok.eos_token)] * 10
    packed = list(blocks(texts, tok, 16, packing=True))
    assert all(len(b["input_ids"]) == 16 and b["attention_mask"] == [1] * 16 for b in packed)
    padded = collate_blocks(list(blocks(texts, tok, 16, packing=False)))
    n = int(padded["attention_mask"][0].sum())
    assert n < 16 and padded["labels"][0][n:].tolist() == [-100] * (16 - n)
    assert padded["labels"][0][:n].tolist() == padded["input_ids"][0][:n].tolist()


def reference_blocks(texts: list[str], tokenizer, max_length: int, packing: bool) -> dict[str, list[list[int]]]:
    """The blocks as the train stage made them before streaming: the whole split tokenised at once."""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    if packing:
        flat = [t for seq in ids for t in seq]
        n = max(1, len(flat) // max_length)
        chunks = [flat[i * max_length:(i + 1) * max_length] for i in range(n)]
        return {"input_ids": chunks, "labels": chunks}
    pad = tokenizer.pad_token_id
    return {"input_ids": [s[:max_length] + [pad] * (max_length - len(s[:max_length])) for s in ids],
            "labels": [s[:max_length] + [-100] * (max_length - len(s[:max_length])) for s in ids]}


@pytest.mark.parametrize("packing", [True, False])
@pytest.mark.parametrize("n_rows", [1, 7, 40])
def test_the_streamed_dataset_holds_the_same_blocks_in_the_same_order(tmp_path, packing, n_rows):
    """Streamed in batches (smaller than the split) through a memory-mapped Arrow table, labels made by the
    collator: the very blocks and labels of tokenising the whole split at once."""
    tok = make_tokenizer()
    rows = [{"prompt": f"Pt {i} alert and oriented", "target": "HR 80s NSR. " * (i % 5 + 1)} for i in range(n_rows)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = build_dataset(path, tok, 16, packing, cache_dir=tmp_path / "cache")
    want = reference_blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing)
    assert dataset["input_ids"] == want["input_ids"]
    assert collate_blocks([dataset[i] for i in range(len(dataset))])["labels"].tolist() == want["labels"]
    assert list(blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing, batch=3)) == \
        list(blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing, batch=1000))


def test_a_changed_split_is_not_read_from_the_cache(tmp_path):
    tok = make_tokenizer()
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "Pt alert", "target": "HR 80s."}) + "\n")
    first = build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"]
    assert build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"] == first  # from the cache
    assert len(list((tmp_path / "cache").rglob("*.arrow"))) == 1
    path.write_text(json.dumps({"prompt": "Foley draining", "target": "clear yellow urine."}) + "\n")
    assert build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"] != first
    path.write_text("\n\n")
    with pytest.raises(NoteLMError, match="no examples"):
        build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")


def test_a_wordpiece_note_ends_with_one_end_marker(tmp_path):
    """BERT-style tokenizers append [SEP] themselves (made the EOS): a training note gets no second one."""
    from notelm.training.weights import prepare_tokenizer
    from tests.tiny import make_chinese_tokenizer

    tok = prepare_tokenizer(make_chinese_tokenizer())
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "患者神志", "target": "清楚"}, ensure_ascii=False) + "\n", encoding="utf-8")
    row = build_dataset(path, tok, 32, packing=False, cache_dir=tmp_path / "cache")[0]
    ids = [i for i, m in zip(row["input_ids"], row["attention_mask"]) if m]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and ids.count(tok.sep_token_id) == 1
    assert len(ids) == 2 + 6


@pytest.mark.parametrize("packing", [True, False])
def test_in_one_block_says_which_token_windows_a_block_holds_whole(packing):
    tok = make_tokenizer()
    texts = [training_text({"prompt": f"Note {i}: pt alert", "target": "and oriented x3, HR 80s NSR." * (i % 3 + 1)},
                           tok.eos_token) for i in range(9)]
    ids = tok(texts, add_special_tokens=True)["input_ids"]
    made = [b["input_ids"] for b in blocks(texts, tok, 16, packing)]
    inside = in_one_block([len(x) for x in ids], 16, packing)
    seen = {True: 0, False: 0}
    for i, text_ids in enumerate(ids):
        for start in range(len(text_ids) - 4):
            window = text_ids[start:start + 5]
            held = inside(i, start, start + 5)
            seen[held] += 1
            if held:  # the block holding it holds these very tokens, in a row
                assert any(window == b[k:k + 5] for b in made for k in range(len(b) - 4))
    assert seen[True] and seen[False]  # some windows cross a block edge (or the truncation, unpacked)
    if packing:  # a window across the edge of the first two blocks is in neither whole
        ends = list(itertools.accumulate(len(x) for x in ids))
        edge = next(i for i, n in enumerate(ends) if n > 16)  # the text running over token 16
        start = max(0, 16 - (ends[edge] - len(ids[edge])) - 2)
        assert not inside(edge, start, start + 5)
