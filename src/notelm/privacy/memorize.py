"""Does a model give its training notes back: extraction (Carlini et al. 2022), canary exposure (Carlini et al.
2019), and the gate's record that the app reads. The memorize stage runs these; the app calls `refusal`.

Extraction prompts a model with a note's first k tokens (the note as the train stage trains on it:
blocks.training_text, without the end token) and decodes m tokens greedily. Per note: `exact` (all m equal to
the note's next m), `lcs` (the longest run of tokens the continuation shares with them, anywhere) and `rougeL`
(of the decoded texts). Train notes and unseen test notes are scored alike, each test note paired with the train
note nearest in token length (`matched_pairs`): the test side is the model's honest skill on this ward's language,
train − test is what it has memorized.
"""

from __future__ import annotations

import difflib
import random
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.generate import GenerateParams
from notelm.config.names import GATE
from notelm.core.files import read_json
from notelm.evaluation.bootstrap import Resampling, interval, replicates, verdict
from notelm.generation.decoding import cache_kwargs, decode, decoding_kwargs, target_nll
from notelm.training import canaries
from notelm.training.blocks import training_text
from notelm.training.checkpoints import hash_files

Note = tuple[dict[str, Any], list[int]]  # (prepared row, its token ids)


def note_ids(tokenizer, rows: list[dict[str, Any]], shortest: int) -> list[Note]:
    """The rows whose training text has at least `shortest` tokens, with those tokens."""
    ids = tokenizer([training_text(r, "") for r in rows], add_special_tokens=True)["input_ids"]
    return [(r, i) for r, i in zip(rows, ids) if len(i) >= shortest]


def matched_pairs(train: list[Note], test: list[Note], n: int, seed: int) -> list[tuple[Note, Note]]:
    """Up to `n` (train, test) pairs: a seeded sample of test notes, each with the unused train note nearest in
    token length (the first of a seeded order on ties), so the two sides are alike in length by design."""
    rng = random.Random(seed)
    picked = rng.sample(test, min(n, len(test), len(train)))
    pool = rng.sample(train, len(train))
    pairs = []
    for note in picked:
        best = min(range(len(pool)), key=lambda i: abs(len(pool[i][1]) - len(note[1])))
        pairs.append((pool.pop(best), note))
    return pairs


def longest_common_run(a: list[int], b: list[int]) -> int:
    """Length of the longest contiguous run of tokens `a` and `b` share."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def extract(model, tokenizer, seqs: list[list[int]], k: int, m: int, batch_size: int) -> list[list[int]]:
    """Greedy continuation (up to `m` tokens; an EOS kept as the last) of each sequence's first `k` tokens."""
    import torch

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out: list[list[int]] = []
    for start in range(0, len(seqs), batch_size):
        ids = torch.tensor([s[:k] for s in seqs[start:start + batch_size]])  # B × k: equal widths, no padding
        with torch.inference_mode():
            new = model.generate(input_ids=ids.to(model.device), attention_mask=torch.ones_like(ids).to(model.device),
                                 max_new_tokens=m, min_new_tokens=0, pad_token_id=pad, eos_token_id=eos, use_cache=True,
                                 **cache_kwargs(model), **decoding_kwargs(GenerateParams()))[:, k:]  # B × ≤ m
        for row in new.tolist():
            out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out


def score_extraction(tokenizer, seqs: list[list[int]], written: list[list[int]], k: int, m: int) -> dict[str, np.ndarray]:
    """Per sequence: exact (1/0), lcs (tokens) and rougeL of what was `written` after its first `k` tokens
    against its true next `m`."""
    from notelm.evaluation.rouge import rouge_scores

    truth = [s[k:k + m] for s in seqs]
    return {"exact": np.array([float(w[:m] == t) for w, t in zip(written, truth)]),
            "lcs": np.array([float(longest_common_run(w, t)) for w, t in zip(written, truth)]),
            "rougeL": rouge_scores([decode(tokenizer, w) for w in written], [decode(tokenizer, t) for t in truth],
                                   ("rougeL",))["rougeL"]}


def gap(train: np.ndarray, test: np.ndarray, train_subjects: list, test_subjects: list, samples: int,
        seed: int) -> dict[str, Any]:
    """train − test of a per-note measure with its 95 % interval: train and test patients are resampled each on
    their own (the two samples hold different patients), every note with its patient's other notes."""
    reps = (replicates(train, Resampling.by(train_subjects), samples, seed)[:, 0]
            - replicates(test, Resampling.by(test_subjects), samples, seed + 1)[:, 0])
    point = float(train.mean() - test.mean())
    low, high = interval(point, reps)
    return {"gap": point, "gap_ci_low": low, "gap_ci_high": high, "gap_verdict": verdict(low, high, "neutral")}


def canary_exposures(model, tokenizer, record: dict[str, Any], n_candidates: int, seed: int,
                     batch_size: int) -> dict[str, list[float]]:
    """Exposure (bits) of each planted and each control secret of a train record's `canaries`, all ranked among
    the same `n_candidates` random secrets by the likelihood of the template's tail given its prefix."""
    secrets = record["planted"] + record["controls"]
    pool = canaries.candidates(n_candidates, seed, set(secrets))
    head = canaries.prefix()
    tails = [canaries.text(s)[len(head):].strip() for s in secrets + pool]
    nll = [n for n, _ in target_nll(model, tokenizer, [head] * len(tails), tails,
                                    GenerateParams(batch_size=batch_size, max_prompt_tokens=None))]
    ranked = [canaries.exposure(x, nll[len(secrets):]) for x in nll[: len(secrets)]]
    return {"planted": ranked[: len(record["planted"])], "controls": ranked[len(record["planted"]):]}


def checkpoint_id(model_dir: str | Path) -> str:
    """A short hash of a checkpoint's weights (its *.safetensors files): which checkpoint a gate was measured on."""
    return hash_files(sorted(Path(model_dir).glob("*.safetensors")))


def refusal(model_dir: str | Path, detail_path: str | Path) -> str | None:
    """Why a checkpoint must not be served: the memorization gate in `detail_path` (the memorize stage's detail
    file: `checkpoints` {variant: checkpoint_id}, `problems` {variant: messages}) failed for these very weights.
    None when it passed for them, or the file measured other weights or is absent."""
    detail = read_json(detail_path) if Path(detail_path).is_file() else None
    if not detail or detail.get(GATE) == "pass":
        return None
    weights = checkpoint_id(model_dir)
    for variant, measured in (detail.get("checkpoints") or {}).items():
        problems = (detail.get("problems") or {}).get(variant)
        if measured == weights and problems:
            return f"its memorization gate failed ({detail_path}: {'; '.join(problems)})"
    return None
