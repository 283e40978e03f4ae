"""How a continuation is scored and how sure we are: ROUGE, BERTScore, likelihood per byte, and the
patient-clustered paired bootstrap. Used by the evaluate stage and by the Hugging Face `evaluate` module
in hf_metrics/notelm_continuation/, so both give the same numbers on the same pairs.

ROUGE
    `rouge_score` F1 with the Porter stemmer. Prepared notes have their whitespace normalised, so there
    are no newlines for rougeLsum to split summaries on; both texts are split into sentences after `.`,
    `!` or `?` followed by whitespace (`split_sentences`) and joined with newlines first. That changes
    rougeLsum only; the tokenizer of rouge1/2/L ignores punctuation.
BERTScore
    bert_score's greedy cosine matching with the encoder `evaluate.bertscore_model` at its hidden layer
    `evaluate.bertscore_layer`. Raw scores of different encoders are not comparable; the encoder and
    layer are part of the metric record. `official_baseline` reads bert_score's own rescale baseline for
    the encoders it ships one for (roberta-large, ...); the bundled MiniLM has none.
Intervals
    Notes of one patient are not independent (they copy each other forward), so every interval and every
    difference resamples *patients* with all their notes (`Resampling.by(subject_ids)`); a difference is
    paired: both systems are scored on the same resampled patients. The point estimate is the mean over
    notes; the interval is the percentile interval of the resampled means, widened to hold the point.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.artifacts import BERTSCORE_KEYS, ROUGE_KEYS
from notelm.errors import NoteLMError, ParamsError
from notelm.params import EvaluateParams
from notelm.progress import progress
from notelm.weights import encoder_dir

CONFIDENCE = 0.95
MIN_CLUSTERS = 20  # fewer resampled patients than this: an interval says little about new patients
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_REPLICATES_PER_BLOCK = 1000  # resamples drawn at once: bounds the (block × clusters) count matrix


# ------------------------------------------------------------------------------------------ ROUGE
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


# ------------------------------------------------------------------------------------------ BERTScore
@dataclass
class Encoder:
    name: str
    layer: int
    tokenizer: Any
    model: Any
    device: str


@functools.lru_cache(maxsize=2)
def load_encoder(source: str, layer: int | None, seed: int) -> Encoder:
    """The BERTScore encoder of `source` (weights.py syntax) cut after `layer` (None: bert_score's default)."""
    import torch
    import transformers
    from bert_score.utils import get_model, get_tokenizer, model2layers
    from transformers import AutoConfig

    path = encoder_dir(source)
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in the stage's log
    if layer is None:
        if source not in model2layers:
            raise ParamsError(f"params.yaml: evaluate.bertscore_layer: bert_score has no default layer for {source!r}; "
                              "set one (e.g. 6 for the bundled MiniLM)")
        layer = model2layers[source]
    try:
        n_layers = AutoConfig.from_pretrained(path).num_hidden_layers
        torch.manual_seed(seed)
        tokenizer = get_tokenizer(path, use_fast=False)
        if layer > n_layers:
            raise ParamsError(f"params.yaml: evaluate.bertscore_layer: {layer}, but {source!r} has {n_layers} layers")
        model = get_model(path, layer)  # keeps layers 1..layer and calls model.eval()
    except NoteLMError:
        raise
    except Exception as exc:
        raise NoteLMError(f"evaluate.bertscore_model={source!r}: could not load the encoder from {path}: {exc}") from exc
    if tokenizer.model_max_length > 100_000:  # tokenizer without a real limit: use the model's
        tokenizer.model_max_length = min(512, getattr(model.config, "max_position_embeddings", 512))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    return Encoder(source, layer, tokenizer, model, device)


def _idf_dict(refs: list[str], enc: Encoder, use_idf: bool) -> dict:
    from collections import defaultdict

    from bert_score.utils import get_idf_dict

    if use_idf:
        return get_idf_dict(refs, enc.tokenizer, nthreads=0)
    idf = defaultdict(lambda: 1.0)
    idf[enc.tokenizer.sep_token_id] = 0
    idf[enc.tokenizer.cls_token_id] = 0
    return idf


def _embed(texts: list[str], enc: Encoder, idf: dict, batch_size: int, dtype: str) -> dict[str, tuple]:
    """Embed each distinct text once, in a fixed order (longest first, then by text) so runs repeat exactly.

    dtype "bfloat16" runs the encoder under bf16 autocast (about 3x faster on CPUs with native bf16;
    scores move by about 1e-4, at most about 1e-3); the embeddings are returned in float32 either way.
    """
    import torch
    from bert_score.utils import get_bert_embedding, sent_encode

    # bert_score cannot encode "" under transformers 5; empty texts are scored 0 in _match instead.
    unique = sorted({t for t in texts if t.strip()}, key=lambda s: (-len(sent_encode(enc.tokenizer, s)), s))
    stats = {}
    for start in range(0, len(unique), batch_size):
        batch = unique[start:start + batch_size]
        with torch.autocast(enc.device, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            emb, mask, pidf = get_bert_embedding(batch, enc.model, enc.tokenizer, idf, device=enc.device)
        emb, mask, pidf = emb.float().cpu(), mask.cpu(), pidf.cpu()
        for i, text in enumerate(batch):
            n = int(mask[i].sum())
            stats[text] = (emb[i, :n], pidf[i, :n])
    return stats


def _match(preds: list[str], refs: list[str], stats: dict, batch_size: int) -> np.ndarray:
    """Greedy cosine matching (bert_score's own) of each pred with its ref; returns array[n, 3] of P, R, F."""
    import torch
    from bert_score.utils import greedy_cos_idf
    from torch.nn.utils.rnn import pad_sequence

    def pad(texts):
        emb = [stats[t][0] for t in texts]
        idf = [stats[t][1] for t in texts]
        lens = torch.tensor([e.size(0) for e in emb])
        mask = torch.arange(int(lens.max())).expand(len(texts), -1) < lens.unsqueeze(1)
        return pad_sequence(emb, batch_first=True, padding_value=2.0), mask, pad_sequence(idf, batch_first=True)

    out = np.zeros((len(preds), 3))  # an empty text scores 0, as in bert_score
    keep = [i for i, (p, r) in enumerate(zip(preds, refs)) if p.strip() and r.strip()]
    with torch.no_grad():
        for s in range(0, len(keep), batch_size):
            rows = keep[s:s + batch_size]
            p, r, f = greedy_cos_idf(*pad([refs[i] for i in rows]), *pad([preds[i] for i in rows]))
            out[rows] = torch.stack([p, r, f], dim=-1).double().numpy()
    return out


def bertscore_many(systems: dict[str, Sequence[str]], refs: Sequence[str], cfg: EvaluateParams,
                   chunk: int = 512) -> dict[str, dict[str, np.ndarray]]:
    """Raw BERTScore of every system's predictions against the shared `refs`: {system: {P, R, F1: array[n]}}.

    Works through the examples in chunks, embedding each distinct text of a chunk once, so references are
    encoded once for all systems and memory stays bounded. Deterministic.
    """
    enc = load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed)
    refs = list(refs)
    idf = _idf_dict(refs, enc, cfg.bertscore_idf)
    out: dict[str, list[np.ndarray]] = {name: [] for name in systems}
    starts = range(0, len(refs), chunk)
    for s in progress(starts, f"BERTScore ({len(systems)} systems, {chunk} references a chunk)", unit="chunk"):
        part_refs = refs[s:s + chunk]
        parts = {name: list(preds[s:s + chunk]) for name, preds in systems.items()}
        stats = _embed(part_refs + [t for preds in parts.values() for t in preds], enc, idf,
                       cfg.bertscore_batch_size, cfg.bertscore_dtype)
        for name, preds in parts.items():
            out[name].append(_match(preds, part_refs, stats, cfg.bertscore_batch_size))
    return {name: {k: prf[:, i] for i, k in enumerate(BERTSCORE_KEYS)}
            for name, prf in ((n, np.concatenate(v) if v else np.zeros((0, 3))) for n, v in out.items())}


def bertscore_scores(preds: Sequence[str], refs: Sequence[str], cfg: EvaluateParams) -> dict[str, np.ndarray]:
    """Raw BERTScore of each prediction against its reference: {bertscore_precision, _recall, _f1: array[n]}."""
    if len(preds) != len(refs):
        raise ValueError(f"bertscore_scores: {len(preds)} predictions but {len(refs)} references")
    return bertscore_many({"x": preds}, refs, cfg)["x"]


def official_baseline(source: str, layer: int) -> tuple[float, float, float] | None:
    """bert_score's own rescale baseline (P, R, F) for a hub encoder at `layer`, from the file it ships for it
    (rescale_baseline/en/<model>.tsv); None for encoders it has none for (local folders, the bundled MiniLM)."""
    import bert_score

    path = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{source}.tsv"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines()[1:]:
        fields = line.split(",")
        if int(fields[0]) == layer:
            return float(fields[1]), float(fields[2]), float(fields[3])
    return None


def rescale(scores: np.ndarray, baseline: float) -> np.ndarray:
    """bert_score's rescaling (s - b) / (1 - b): 0 = as close as the baseline pairs, 1 = identical."""
    return (scores - baseline) / (1 - baseline)


# ------------------------------------------------------------------------------------------ likelihood
def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Negative log-likelihood in nats over `n_bytes` bytes of UTF-8 text, as bits per byte: comparable across
    tokenizers, since every model is charged for the same bytes."""
    return nll_nats / math.log(2) / n_bytes


def target_bytes(target: str) -> int:
    """The bytes a model is charged for when it continues a prompt with `target`: the separating space and
    the target, in UTF-8 (every tokenizer predicts the space with the target's first token)."""
    return len((" " + target).encode("utf-8"))


# ------------------------------------------------------------------------------------------ bootstrap
@dataclass(frozen=True)
class Resampling:
    """Which examples are resampled together: one cluster index (0..C-1) per example."""

    clusters: np.ndarray
    unit: str

    @classmethod
    def by(cls, keys: Sequence[Any], unit: str = "patient") -> Resampling:
        """Examples with equal keys (e.g. subject_id) form a cluster."""
        _, index = np.unique(np.asarray([str(k) for k in keys]), return_inverse=True)
        return cls(index.astype(np.int64), unit)

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1 if len(self.clusters) else 0


def replicates(values: np.ndarray, resampling: Resampling, samples: int, seed: int,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates of the mean of each column of `values` (n × K): `samples` × K.

    Each replicate draws clusters with replacement (counts from one multinomial per replicate) and takes
    sum(values) / sum(weights) over their examples: the plain mean with the default weights (1 per example),
    a ratio of sums with others (e.g. NLL over bytes). Every column shares the same draws, so differences
    between columns are paired.
    """
    values = np.asarray(values, dtype=float).reshape(len(resampling.clusters), -1)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float).reshape(values.shape)
    n_clusters = resampling.n_clusters
    sums = np.zeros((n_clusters, values.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, resampling.clusters, values)
    np.add.at(counts, resampling.clusters, weights)
    rng = np.random.default_rng(seed)
    out = np.empty((samples, values.shape[1]))
    for start in range(0, samples, _REPLICATES_PER_BLOCK):
        draws = rng.multinomial(n_clusters, np.full(n_clusters, 1 / n_clusters), size=min(_REPLICATES_PER_BLOCK,
                                                                                           samples - start))
        out[start:start + len(draws)] = (draws @ sums) / (draws @ counts)
    return out


def interval(point: float, reps: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of `reps`, widened to hold `point` (degenerate resamples, float noise)."""
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.percentile(reps, [100 * alpha, 100 * (1 - alpha)])
    return float(min(low, point)), float(max(high, point))


def normal_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % interval of a mean treating every example as independent (the note-level view, normal
    approximation): what an interval looks like when the patients' shared notes are ignored."""
    values = np.asarray(values, dtype=float)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean() - half), float(values.mean() + half)


def verdict(low: float, high: float) -> str:
    """What a paired difference's interval says: `beats` (above 0), `worse` (below 0), or `not distinguishable`."""
    return "beats" if low > 0 else "worse" if high < 0 else "not distinguishable"
