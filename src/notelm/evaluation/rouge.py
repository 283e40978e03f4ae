"""ROUGE as NoteLM scores it: `rouge_score` F1 with the Porter stemmer. Prepared notes have their whitespace
normalised, so there are no newlines for rougeLsum to split summaries on; both texts are split into sentences
after `.`, `!` or `?` followed by whitespace (`split_sentences`) and joined with newlines first. That changes
rougeLsum only; the tokenizer of rouge1/2/L ignores punctuation.

Used by prepare (the redundancy between successive notes), evaluate and hf_metrics/notelm_continuation/, so all
give the same numbers on the same pairs. It loads no model, so editing the encoders re-runs nothing here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

from notelm.config.names import ROUGE_KEYS
from notelm.data.progress import progress

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split `text` after `.`, `!` or `?` followed by whitespace, and at newlines; drop empty pieces."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@functools.lru_cache(maxsize=4)
def _rouge_scorer(keys: tuple[str, ...]):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(keys), use_stemmer=True)


def rouge_scores(preds: Sequence[str], refs: Sequence[str], keys: Sequence[str] = ROUGE_KEYS) -> dict[str, np.ndarray]:
    """ROUGE F1 of each prediction against its reference: {key: array[n]} for `keys` (default rouge1, rouge2,
    rougeL, rougeLsum); a key's scores do not depend on which others are asked for (fewer are faster)."""
    if len(preds) != len(refs):
        raise ValueError(f"rouge_scores: {len(preds)} predictions but {len(refs)} references")
    scorer = _rouge_scorer(tuple(keys))
    out = {k: np.zeros(len(preds)) for k in keys}
    for i, (pred, ref) in enumerate(progress(zip(preds, refs), "ROUGE", total=len(preds), unit="pair")):
        scores = scorer.score("\n".join(split_sentences(ref)), "\n".join(split_sentences(pred)))
        for k in keys:
            out[k][i] = scores[k].fmeasure
    return out
