"""The `evaluate` stage: score generated continuations against their references.

Reads `generations/<variant>.jsonl` (the variant is the file's name: pretrained, finetuned) and
`data/prepared/{train,test}.jsonl`, and writes `metrics/eval.json` (its shape: src/notelm/artifacts.py)
and the per-example scores `eval/per_example.csv` (note ids and numbers only, no note text).

    python -m notelm.stages.evaluate --generations generations/pretrained.jsonl generations/finetuned.jsonl \
        --prepared data/prepared --metrics metrics/eval.json --per-example eval/per_example.csv

What is scored
  Only the continuation: each generation's `completion` against its `reference`
  (the test example's `target`). A completion that starts with its own prompt is a
  generator bug that would inflate every score, so it is refused with an error.

Metrics (per variant, per baseline)
  rouge1, rouge2, rougeL, rougeLsum
      `rouge_score` F1 with the Porter stemmer, mean over examples. Prepared notes have
      their whitespace normalised, so there are no newlines for rougeLsum to split
      summaries on; before scoring, both texts are split into sentences after `.`, `!`
      or `?` followed by whitespace (:func:`split_sentences`) and joined with newlines.
      That changes rougeLsum only; the tokenizer of rouge1/2/L ignores punctuation.
  bertscore_precision, bertscore_recall, bertscore_f1
      BERTScore (`bert_score`) with the encoder `evaluate.bertscore_model` and its
      hidden layer `evaluate.bertscore_layer`: raw scores. They are comparable only with runs of the same
      encoder and layer (the original study used roberta-large; the offline default is MiniLM).
      The encoder runs in float32 unless `evaluate.bertscore_dtype: bfloat16` (about 3x faster
      on CPUs with native bf16; scores move by ~1e-4). Encoder, layer, idf, dtype and rescaling
      are recorded under `bertscore` in the metrics so different settings are never compared silently.
  bertscore_{precision,recall,f1}_rescaled  (only with `bertscore_rescale: true`)
      (s - b) / (1 - b), where b is the mean raw score of mismatched pairs: the
      reference of each evaluated note against the reference of another evaluated note
      (a seeded derangement). 0 then means "no closer than an unrelated note",
      1 means identical. b is treated as fixed (not resampled) in the intervals.
  perplexity  (only when the generations carry it)
      If every row of a generations file has `target_nll` (summed negative log-likelihood,
      in nats, of the reference given the prompt) and `target_tokens`, the variant gets
      perplexity = exp(sum target_nll / sum target_tokens) with its interval.
  Every metric m comes with `m_ci_low` / `m_ci_high`: a seeded 95 % percentile bootstrap
  of the mean over examples. `diff` holds finetuned - pretrained for each metric, from
  a paired bootstrap (the same resampled examples for both). The point estimate is the
  sample mean; an interval is widened to contain it when resampling noise would not.

Baselines (`baselines`, scored the same way on the same examples)
  copy_last_sentence   the prompt's last complete sentence as the continuation.
  retrieval            the target of the train note whose prompt is nearest to the test
                       prompt by TF-IDF cosine similarity.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm import runner
from notelm.artifacts import (
    BASELINES,
    BERTSCORE_KEYS,
    DIFF,
    EVAL_METRICS,
    GENERATIONS_DIR,
    PER_EXAMPLE,
    PREPARED_DIR,
    ROUGE_KEYS,
    VARIANTS,
    atomic_open,
    generations_path,
    read_jsonl,
    split_path,
    variant_of,
    write_json,
)
from notelm.errors import NoteLMError, ParamsError
from notelm.params import EvaluateParams, load_section
from notelm.weights import encoder_dir

CONFIDENCE = 0.95
GENERATION_FIELDS = ["note_id", "prompt", "reference", "completion"]
DECIMALS = 6  # metrics are rounded so tiny float noise never changes eval.json

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


# --------------------------------------------------------------------------- ROUGE

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split `text` after `.`, `!` or `?` followed by whitespace, and at newlines; drop empty pieces."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(ROUGE_KEYS, use_stemmer=True)


def rouge_scores(preds: list[str], refs: list[str]) -> dict[str, np.ndarray]:
    """ROUGE F1 of each prediction against its reference: {rouge1, rouge2, rougeL, rougeLsum: array[len(preds)]}.

    Deterministic. Texts are sentence-split onto lines first (see module docstring), which only rougeLsum uses.
    """
    if len(preds) != len(refs):
        raise ValueError(f"rouge_scores: {len(preds)} predictions but {len(refs)} references")
    scorer = _rouge_scorer()
    out = {k: np.zeros(len(preds)) for k in ROUGE_KEYS}
    for i, (pred, ref) in enumerate(zip(preds, refs)):
        scores = scorer.score("\n".join(split_sentences(ref)), "\n".join(split_sentences(pred)))
        for k in ROUGE_KEYS:
            out[k][i] = scores[k].fmeasure
    return out


# ----------------------------------------------------------------------- BERTScore


@dataclass
class _Encoder:
    name: str
    layer: int
    tokenizer: Any
    model: Any
    device: str


@functools.lru_cache(maxsize=2)
def _load_encoder(spec: str, layer: int | None, seed: int) -> _Encoder:
    import torch
    import transformers
    from bert_score.utils import get_model, get_tokenizer, model2layers
    from transformers import AutoConfig

    path = encoder_dir(spec)
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in the stage's log
    if layer is None:
        if spec not in model2layers:
            raise ParamsError(
                f"params.yaml: evaluate.bertscore_layer: bert_score has no default layer for {spec!r}; "
                "set one (e.g. 6 for the bundled MiniLM)"
            )
        layer = model2layers[spec]
    try:
        n_layers = AutoConfig.from_pretrained(path).num_hidden_layers
        torch.manual_seed(seed)
        tokenizer = get_tokenizer(path, use_fast=False)
        if layer > n_layers:
            raise ParamsError(f"params.yaml: evaluate.bertscore_layer: {layer}, but {spec!r} has {n_layers} layers")
        model = get_model(path, layer)  # keeps layers 1..layer and calls model.eval()
    except NoteLMError:
        raise
    except Exception as exc:
        raise NoteLMError(f"evaluate.bertscore_model={spec!r}: could not load the encoder from {path}: {exc}") from exc
    if tokenizer.model_max_length > 100_000:  # tokenizer without a real limit: use the model's
        tokenizer.model_max_length = min(512, getattr(model.config, "max_position_embeddings", 512))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    return _Encoder(spec, layer, tokenizer, model, device)


def _idf_dict(refs: list[str], enc: _Encoder, use_idf: bool) -> dict:
    from collections import defaultdict

    from bert_score.utils import get_idf_dict

    if use_idf:
        return get_idf_dict(refs, enc.tokenizer, nthreads=0)
    idf = defaultdict(lambda: 1.0)
    idf[enc.tokenizer.sep_token_id] = 0
    idf[enc.tokenizer.cls_token_id] = 0
    return idf


def _embed(texts: list[str], enc: _Encoder, idf: dict, batch_size: int, dtype: str) -> dict[str, tuple]:
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


def _bertscore_many(
    systems: dict[str, list[str]], refs: list[str], cfg: EvaluateParams, chunk: int = 512
) -> dict[str, np.ndarray]:
    """BERTScore of every system's predictions against the shared `refs`; {system: array[n, 3] (P, R, F)}.

    Works through the examples in chunks, embedding each distinct text of a chunk once,
    so the references are encoded once for all systems and memory stays bounded.
    """
    enc = _load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed)
    idf = _idf_dict(refs, enc, cfg.bertscore_idf)
    out = {name: [] for name in systems}
    for s in range(0, len(refs), chunk):
        part_refs = refs[s:s + chunk]
        parts = {name: preds[s:s + chunk] for name, preds in systems.items()}
        texts = part_refs + [t for preds in parts.values() for t in preds]
        stats = _embed(texts, enc, idf, cfg.bertscore_batch_size, cfg.bertscore_dtype)
        for name, preds in parts.items():
            out[name].append(_match(preds, part_refs, stats, cfg.bertscore_batch_size))
    return {name: np.concatenate(v) if v else np.zeros((0, 3)) for name, v in out.items()}


def _as_dict(prf: np.ndarray) -> dict[str, np.ndarray]:
    return {k: prf[:, i].copy() for i, k in enumerate(BERTSCORE_KEYS)}


def bertscore_scores(preds: list[str], refs: list[str], cfg: EvaluateParams) -> dict[str, np.ndarray]:
    """Raw BERTScore of each prediction against its reference with cfg's encoder and layer:
    {bertscore_precision, bertscore_recall, bertscore_f1: array[len(preds)]}. Deterministic.
    """
    if len(preds) != len(refs):
        raise ValueError(f"bertscore_scores: {len(preds)} predictions but {len(refs)} references")
    return _as_dict(_bertscore_many({"x": list(preds)}, list(refs), cfg)["x"])


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) with no fixed point (n >= 2): a cycle through a shuffled order."""
    order = np.random.default_rng(seed).permutation(n)
    partner = np.empty(n, dtype=int)
    partner[order] = np.roll(order, -1)
    return partner


# ----------------------------------------------------------------------- bootstrap


def _bootstrap_stats(values: np.ndarray, n: int, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """`n` bootstrap replicates of mean(values), or of sum(values)/sum(weights) when weights are given."""
    rng = np.random.default_rng(seed)
    m = len(values)
    reps = np.empty(n)
    step = max(1, 4_000_000 // m)  # bound the index matrix to ~32 MB
    for s in range(0, n, step):
        idx = rng.integers(0, m, size=(min(step, n - s), m))
        if weights is None:
            reps[s:s + len(idx)] = values[idx].mean(axis=1)
        else:
            reps[s:s + len(idx)] = values[idx].sum(axis=1) / weights[idx].sum(axis=1)
    return reps


def _interval(point: float, reps: np.ndarray) -> tuple[float, float, float]:
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.percentile(reps, [100 * alpha, 100 * (1 - alpha)])
    # The percentile interval can miss the sample mean in degenerate cases (n=1, float noise): widen it.
    return float(point), float(min(low, point)), float(max(high, point))


def _check_values(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: need a non-empty 1-D array of scores, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: scores contain NaN or infinity")
    return arr


def bootstrap_ci(values: Any, n: int, seed: int) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean and its seeded 95 % percentile-bootstrap interval; low <= mean <= high."""
    arr = _check_values(values, "bootstrap_ci")
    return _interval(arr.mean(), _bootstrap_stats(arr, n, seed))


def paired_bootstrap_diff(a: Any, b: Any, n: int, seed: int) -> tuple[float, float, float]:
    """(mean(b - a), low, high): paired bootstrap of the mean difference b - a over the same examples.

    Call it with a = pretrained scores, b = finetuned scores for "finetuned - pretrained".
    """
    a = _check_values(a, "paired_bootstrap_diff")
    b = _check_values(b, "paired_bootstrap_diff")
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap_diff: {a.size} vs {b.size} scores; pairs must match")
    d = b - a
    return _interval(d.mean(), _bootstrap_stats(d, n, seed))


# ----------------------------------------------------------------------- baselines


def copy_last_sentence(prompt: str) -> str:
    """The prompt's last complete sentence (ending in . ! ?); the last fragment if it has none."""
    sents = split_sentences(prompt)
    if not sents:
        return ""
    complete = [s for s in sents if s[-1] in ".!?"]
    return complete[-1] if complete else sents[-1]


def retrieve_nearest(train_prompts: list[str], test_prompts: list[str], chunk: int = 256) -> np.ndarray:
    """Index of the train prompt most similar (TF-IDF cosine) to each test prompt; ties go to the lower index."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True)
    try:
        train = vec.fit_transform(train_prompts)
    except ValueError:  # empty vocabulary: no train prompt has a word
        return np.zeros(len(test_prompts), dtype=int)
    test = vec.transform(test_prompts)
    best = np.empty(len(test_prompts), dtype=int)
    for s in range(0, len(test_prompts), chunk):
        sims = (test[s:s + chunk] @ train.T).toarray()  # rows are L2-normalised: dot = cosine
        best[s:s + chunk] = sims.argmax(axis=1)
    return best


def baseline_completions(train_rows: list[dict], test_rows: list[dict], kind: str) -> list[str]:
    """A continuation for each test row by baseline `kind` (see BASELINE_KINDS), built without any model."""
    if kind == "copy_last_sentence":
        return [copy_last_sentence(r["prompt"]) for r in test_rows]
    if kind == "retrieval":
        if not train_rows:
            raise NoteLMError("retrieval baseline: the train split is empty")
        nearest = retrieve_nearest([r["prompt"] for r in train_rows], [r["prompt"] for r in test_rows])
        return [train_rows[i]["target"] for i in nearest]
    raise ValueError(f"unknown baseline {kind!r}")


# ----------------------------------------------------------------------- the stage


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
    hint = "run the generate stage first (`dvc repro generate_<variant>`)"
    rows = _read_rows(path, GENERATION_FIELDS, hint)
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


def _perplexity(rows: list[dict], cfg: EvaluateParams) -> dict[str, float]:
    """{perplexity, _ci_low, _ci_high} when every row has target_nll and target_tokens, else {}."""
    try:
        nll = np.array([float(r["target_nll"]) for r in rows])
        tok = np.array([float(r["target_tokens"]) for r in rows])
    except (KeyError, TypeError, ValueError):
        return {}
    if tok.sum() <= 0 or not np.all(np.isfinite(nll)):
        return {}
    reps = _bootstrap_stats(nll, cfg.bootstrap_samples, cfg.seed, weights=np.maximum(tok, 1e-9))
    point, low, high = _interval(nll.sum() / tok.sum(), reps)
    return {"perplexity": math.exp(point), "perplexity_ci_low": math.exp(low), "perplexity_ci_high": math.exp(high)}


def _summary(scores: dict[str, np.ndarray], cfg: EvaluateParams) -> dict[str, float]:
    out = {}
    for key, values in scores.items():
        point, low, high = bootstrap_ci(values, cfg.bootstrap_samples, cfg.seed)
        out.update({key: point, f"{key}_ci_low": low, f"{key}_ci_high": high})
    return out


def _round(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, float):
        return round(obj, DECIMALS)
    return obj


def _write_per_example(path: Path, note_ids: list[str], scores: dict[str, dict[str, np.ndarray]]) -> None:
    keys = list(next(iter(scores.values())))
    with atomic_open(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["note_id", "variant", *keys])
        for system, by_key in scores.items():
            for i, nid in enumerate(note_ids):
                writer.writerow([nid, system, *(f"{by_key[k][i]:.{DECIMALS}f}" for k in keys)])


@dataclass
class _Examples:
    """The test examples every generations file covers (in test-split order) and each system's continuations."""

    note_ids: list[str]
    refs: list[str]
    generations: dict[str, list[dict]]  # variant -> generation rows, in note_ids order
    systems: dict[str, list[str]]       # variant or baseline -> continuation per example


def _examples(cfg: EvaluateParams, generation_paths: list[Path], prepared: Path) -> _Examples:
    """Read and cross-check the test split and the generations; build the baselines' continuations."""
    test_rows = _read_rows(split_path("test", prepared), ["note_id", "prompt", "target"], "run the prepare stage first")
    test_by_id = {r["note_id"]: r for r in test_rows}
    gens = {variant_of(path): (path, _load_generations(path, test_by_id)) for path in generation_paths}
    first_path, first = next(iter(gens.values()))
    for path, by_id in gens.values():
        if set(by_id) != set(first):
            only = sorted(set(by_id) ^ set(first))[:3]
            raise NoteLMError(f"{path} and {first_path} cover different test notes (e.g. {only}); re-run generate")
    rows = [r for r in test_rows if r["note_id"] in first]
    note_ids = [r["note_id"] for r in rows]
    generations = {v: [by_id[nid] for nid in note_ids] for v, (_, by_id) in gens.items()}
    systems = {v: [g["completion"] for g in rows_] for v, rows_ in generations.items()}
    if cfg.baselines:
        train_rows = _read_rows(split_path("train", prepared), ["prompt", "target"], "run the prepare stage first")
        for kind in cfg.baselines:
            systems[kind] = baseline_completions(train_rows, rows, kind)
    return _Examples(note_ids, [r["target"] for r in rows], generations, systems)


def _score(ex: _Examples, cfg: EvaluateParams) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """({system: {metric: per-example scores}}, the BERTScore record: encoder, layer, idf, dtype, rescaling)."""
    log.info("scoring %d test notes for %s", len(ex.note_ids), ", ".join(ex.systems))
    per_example = {name: rouge_scores(preds, ex.refs) for name, preds in ex.systems.items()}
    to_score = dict(ex.systems)
    if cfg.bertscore_rescale:
        if len(ex.refs) < 2:
            raise NoteLMError("evaluate.bertscore_rescale: needs at least 2 test examples to form mismatched pairs")
        to_score["__mismatched__"] = [ex.refs[j] for j in derangement(len(ex.refs), cfg.seed)]
    log.info("BERTScore with %s (layer %s, %s)", cfg.bertscore_model, cfg.bertscore_layer, cfg.bertscore_dtype)
    bert = _bertscore_many(to_score, ex.refs, cfg)
    base = bert.pop("__mismatched__", None)
    info: dict[str, Any] = {"model": cfg.bertscore_model, "idf": cfg.bertscore_idf, "rescaled": cfg.bertscore_rescale,
                            "dtype": cfg.bertscore_dtype,
                            "layer": _load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed).layer}
    if base is not None:
        b = base.mean(axis=0)
        if np.any(b >= 1 - 1e-6):
            raise NoteLMError("evaluate.bertscore_rescale: mismatched test references score as identical; cannot rescale")
        info.update({f"baseline_{k.split('_')[1]}": float(b[i]) for i, k in enumerate(BERTSCORE_KEYS)})
    for name, prf in bert.items():
        per_example[name].update(_as_dict(prf))
        if base is not None:
            for i, k in enumerate(BERTSCORE_KEYS):
                per_example[name][f"{k}_rescaled"] = (prf[:, i] - b[i]) / (1 - b[i])
    return per_example, info


def _summarise(ex: _Examples, per_example: dict[str, dict[str, np.ndarray]], info: dict[str, Any],
               cfg: EvaluateParams) -> dict[str, Any]:
    """The eval.json object (artifacts.py): intervals per variant and baseline, the paired difference, run info."""
    metrics: dict[str, Any] = {v: _summary(per_example[v], cfg) | _perplexity(rows, cfg)
                               for v, rows in ex.generations.items()}
    pre, fine = VARIANTS
    if pre in ex.generations and fine in ex.generations:
        diff = {}
        for key, values in per_example[fine].items():
            point, low, high = paired_bootstrap_diff(per_example[pre][key], values, cfg.bootstrap_samples, cfg.seed)
            diff.update({key: point, f"{key}_ci_low": low, f"{key}_ci_high": high})
        metrics[DIFF] = diff
    metrics[BASELINES] = {kind: _summary(per_example[kind], cfg) for kind in cfg.baselines}
    metrics["bertscore"] = info
    metrics["bootstrap"] = {"samples": cfg.bootstrap_samples, "seed": cfg.seed, "confidence": CONFIDENCE}
    metrics["n_examples"] = len(ex.note_ids)
    return _round(metrics)


def evaluate(cfg: EvaluateParams, generation_paths: list[Path], prepared: Path, metrics_path: Path,
             per_example_path: Path) -> dict[str, Any]:
    """Score every generations file (its variant is its file name) and baseline on the test notes the generations
    cover (identical across files), in test-split order; write `metrics_path` and `per_example_path`; return the metrics."""
    if not generation_paths:
        raise NoteLMError("evaluate: no generations file given")
    ex = _examples(cfg, generation_paths, prepared)
    per_example, info = _score(ex, cfg)
    metrics = _summarise(ex, per_example, info, cfg)
    _write_per_example(per_example_path, ex.note_ids, per_example)
    write_json(metrics_path, metrics)
    log.info("wrote %s and %s", metrics_path, per_example_path)
    return metrics


def run(params: dict[str, Any], generations: list[str | Path] | None = None, prepared: str | Path = PREPARED_DIR,
        metrics: str | Path = EVAL_METRICS, per_example: str | Path = PER_EXAMPLE) -> dict[str, Any]:
    """The evaluate stage: the `evaluate:` params; generations files (default: generations/{pretrained,finetuned}.jsonl)."""
    cfg = load_section(EvaluateParams, params, "evaluate")
    paths = [Path(p) for p in generations] if generations else [generations_path(v) for v in VARIANTS]
    return evaluate(cfg, paths, Path(prepared), Path(metrics), Path(per_example))


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("evaluate", __doc__)
    parser.add_argument("--generations", nargs="+", help=f"generations files (default: {GENERATIONS_DIR}/"
                        f"{{{','.join(VARIANTS)}}}.jsonl); the file name is the variant")
    parser.add_argument("--prepared", default=PREPARED_DIR, help=f"split directory (default: {PREPARED_DIR})")
    parser.add_argument("--metrics", default=EVAL_METRICS, help=f"metrics file (default: {EVAL_METRICS})")
    parser.add_argument("--per-example", default=PER_EXAMPLE, help=f"per-example scores (default: {PER_EXAMPLE})")
    args = parser.parse_args(argv)
    return runner.execute("evaluate", args, lambda params: run(params, args.generations, args.prepared, args.metrics,
                                                               args.per_example))


if __name__ == "__main__":
    raise SystemExit(main())
