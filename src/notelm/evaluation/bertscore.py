"""BERTScore as NoteLM scores it: bert_score's greedy cosine matching with the encoder `evaluate.bertscore_model`
at its hidden layer `evaluate.bertscore_layer`. Raw scores of different encoders are not comparable; the encoder
and layer are part of the metric record. `official_baseline` reads bert_score's own rescale baseline for the
encoders it ships one for (roberta-large, ...); the bundled MiniLM has none.

Used by evaluate and hf_metrics/notelm_continuation/.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.evaluate import EvaluateParams
from notelm.config.names import BERTSCORE_KEYS
from notelm.core.errors import NoteLMError, ParamsError
from notelm.data.progress import progress
from notelm.training.weights import encoder_dir


@dataclass
class Encoder:
    name: str
    layer: int
    tokenizer: Any
    model: Any
    device: str


@functools.lru_cache(maxsize=2)
def load_encoder(source: str, layer: int | None, seed: int) -> Encoder:
    """The BERTScore encoder of `source` (training/weights.py syntax) cut after `layer` (None: bert_score's default)."""
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
