"""The `evaluate` stage: every system's continuation of every test prompt, scored against the real rest of the note.

Systems are the model variants (one generations file each; its name is the variant) and model-free
baselines built from the same test prompts, all scored the same way on the same examples:

    chance         the target of a random train note (seeded): what any note of this ward shares
    copy_forward   the same patient's most recent earlier note of the test split (scored or context), cut where this note is cut
                   (prepare cuts every note at data.prompt_fraction, so it is that note's target): what a
                   nurse who has the chart copies forward. A patient's first note falls back to `chance`
                   (counted as copy_forward_fallbacks)
    prompt_tail    the prompt's last words, as many as the reference has
    retrieval      the target of the train note whose prompt is nearest by TF-IDF cosine
    copy_last_sentence   the prompt's last sentence (kept for comparison with earlier runs; not a default)

Every continuation, model or baseline, is cut at data.max_target_words words (the cap of the references).
Scores: ROUGE-1/2/L/Lsum and BERTScore P/R/F1 (src/notelm/scoring.py); for models also the likelihood of
the reference, as bits per byte and per-word perplexity (comparable across tokenizers) and per-token
perplexity (tokenizer-specific). Every interval resamples test patients (clustered bootstrap, paired
across systems); differences — fine-tuned − pre-trained, − each baseline, − the best baseline per metric —
carry a verdict read from their interval. The note-level interval (notes as independent) is kept,
labelled, for comparison. The study's way of scoring (prompt + continuation against the whole note) is a
labelled diagnostic in `study_way`.

Outputs: metrics/detail/eval.json (everything), metrics/eval.json (the headline `dvc exp show` lists:
artifacts.headline), eval/per_example.csv (note ids and scores only, no note text).

    python -m notelm.stages.evaluate --generations generations/pretrained.jsonl generations/finetuned.jsonl \\
        --prepared data/prepared --metrics metrics/eval.json --detail metrics/detail/eval.json \\
        --per-example eval/per_example.csv
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from notelm import runner, scoring
from notelm.artifacts import (
    BERTSCORE_KEYS,
    EVAL_DETAIL,
    EVAL_METRICS,
    HEADLINE,
    PER_EXAMPLE,
    PREPARED_DIR,
    STUDY_WAY_WHY,
    VARIANTS,
    atomic_open,
    generations_path,
    headline,
    read_jsonl,
    scored,
    split_path,
    variant_of,
    write_json,
)
from notelm.errors import NoteLMError
from notelm.history import earlier
from notelm.params import DataParams, EvaluateParams, load_section
from notelm.progress import progress

GENERATION_FIELDS = ["note_id", "prompt", "reference", "completion"]
DECIMALS = 6  # metrics are rounded so tiny float noise never changes eval.json
LIKELIHOOD = ("bits_per_byte", "word_perplexity", "token_perplexity")

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


# ------------------------------------------------------------------------------------------ baselines
def cut_words(text: str, cap: int | None) -> str:
    """`text` cut to its first `cap` words (None: as it is)."""
    return text if cap is None else " ".join(text.split()[:cap])


def copy_last_sentence(prompt: str) -> str:
    """The prompt's last complete sentence (ending in . ! ?); the last fragment if it has none."""
    sents = scoring.split_sentences(prompt)
    complete = [s for s in sents if s[-1] in ".!?"]
    return (complete or sents or [""])[-1]


def retrieve_nearest(train_prompts: list[str], test_prompts: list[str], common_df: float = 0.01,
                     block_bytes: int = 256 * 2**20, dense_bytes: int = 2**30) -> np.ndarray:
    """Index of the train prompt most similar (TF-IDF cosine) to each test prompt; ties go to the lower index.

    The same answer as an argmax over the full test × train similarity matrix, computed without holding it.
    Hand-written because no well-kept library does exact top-1 fast enough here: a sparse product
    (sparse_dot_topn) was 2.7x faster than the dense blocks and still ~40 min at MIMIC's 800k × 100k, since
    a ward's common words put most of the matrix's work in a few hundred long posting lists. Those words
    (in at least `common_df` of train prompts; as many as `dense_bytes` of float32 hold) go through a BLAS
    GEMM, the rest through a sparse product; each block of test rows (`block_bytes` of float32 scores)
    keeps every train row within float32's error of its maximum, and those few are re-scored exactly
    (float64, sparse) so the lowest index at the true maximum wins.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True)
    try:
        train = vec.fit_transform(train_prompts)  # (n_train, vocab) float64, rows L2-normalised
    except ValueError:  # empty vocabulary: no train prompt has a word
        return np.zeros(len(test_prompts), dtype=int)
    if not test_prompts:
        return np.zeros(0, dtype=int)
    test = vec.transform(test_prompts)
    common, rare = _split_vocabulary(train, common_df, dense_bytes)
    train_common = _dense_transposed(train, common)  # (n_common, n_train) float32
    train_rare = train[:, rare].T.tocsr().astype(np.float32)  # (n_rare, n_train)
    best = np.zeros(len(test_prompts), dtype=int)  # a prompt sharing no word with train: index 0, as argmax of 0s
    rows = max(1, block_bytes // (4 * train.shape[0]))
    for s in progress(range(0, len(test_prompts), rows), "retrieval", unit="block"):
        block = test[s:s + rows]
        scores = block[:, common].toarray().astype(np.float32) @ train_common  # (rows, n_train)
        extra = (block[:, rare].astype(np.float32) @ train_rare).tocoo()  # no repeated (row, col) in a product
        scores[extra.row, extra.col] += extra.data
        for i, row_max in enumerate(scores.max(axis=1)):
            if block[i].nnz:
                # a float32 sum of n products of unit-vector weights errs by at most ~n·6e-8: 1e-4 covers the
                # terms two prompts share by far; rows scoring 0 share no word and are never the maximum
                near = (scores[i] >= row_max - 1e-4) & (scores[i] > 0)
                best[s + i] = _exact_argmax(block[i], train, np.flatnonzero(near))
    return best


def _split_vocabulary(train, common_df: float, dense_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(common term ids, rare term ids): common = in >= `common_df` of train rows, the most frequent first,
    at most as many as `dense_bytes` of float32 train columns hold."""
    df = np.bincount(train.indices, minlength=train.shape[1])
    order = np.argsort(-df, kind="stable")
    cap = max(0, dense_bytes // (4 * train.shape[0]))
    common = order[: min(cap, int((df >= common_df * train.shape[0]).sum()))]
    return np.sort(common), np.setdiff1d(np.arange(train.shape[1]), common)


def _dense_transposed(train, columns: np.ndarray, rows: int = 50_000) -> np.ndarray:
    """train[:, columns] as a dense float32 (len(columns), n_train) array, built a slice of rows at a time
    (never the float64 dense copy)."""
    out = np.empty((len(columns), train.shape[0]), dtype=np.float32)
    for s in range(0, train.shape[0], rows):
        out[:, s:s + rows] = train[s:s + rows][:, columns].toarray().T
    return out


def _exact_argmax(query, train, candidates: np.ndarray) -> int:
    """The lowest index among `candidates` at the maximum float64 cosine with `query` (a 1-row sparse matrix)."""
    if len(candidates) == 1:
        return int(candidates[0])
    exact = (query @ train[candidates].T).toarray().ravel()
    return int(candidates[exact == exact.max()].min())


def chance_targets(train_rows: list[dict], n: int, seed: int) -> list[str]:
    """The targets of `n` train notes drawn at random (seeded, with replacement)."""
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


def baselines(kinds: list[str], train_rows: list[dict], test_rows: list[dict], seed: int,
              split_rows: list[dict] | None = None) -> tuple[dict[str, list[str]], int]:
    """({baseline: continuation per test row}, copy-forward fallbacks), built without any model; copy-forward
    looks for earlier notes among `split_rows` (the whole test split, default `test_rows`)."""
    if not train_rows and any(k in kinds for k in ("chance", "retrieval", "copy_forward")):
        raise NoteLMError("baselines: the train split is empty")
    chance = chance_targets(train_rows, len(test_rows), seed) if train_rows else []
    out: dict[str, list[str]] = {}
    fallbacks = 0
    for kind in kinds:
        if kind == "chance":
            out[kind] = chance
        elif kind == "copy_forward":
            out[kind], fallbacks = copy_forward(test_rows, split_rows or test_rows, chance)
        elif kind == "prompt_tail":
            out[kind] = [" ".join(r["prompt"].split()[-len(r["target"].split()):]) for r in test_rows]
        elif kind == "retrieval":
            nearest = retrieve_nearest([r["prompt"] for r in train_rows], [r["prompt"] for r in test_rows])
            out[kind] = [train_rows[i]["target"] for i in nearest]
        else:
            out[kind] = [copy_last_sentence(r["prompt"]) for r in test_rows]
    return out, fallbacks


# ------------------------------------------------------------------------------------------ inputs
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
    fallbacks: int = 0                  # copy-forward rows that had no earlier note

    @property
    def refs(self) -> list[str]:
        return [r["target"] for r in self.rows]

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
        built, fallbacks = baselines(cfg.baselines, train_rows, rows, cfg.seed, split_rows)
        raw.update(built)
    return Examples(rows, generations, {name: [cut_words(t, cap) for t in texts] for name, texts in raw.items()},
                    {name: [len(t.split()) for t in texts] for name, texts in raw.items()}, fallbacks)


# ------------------------------------------------------------------------------------------ scores
def score_continuations(ex: Examples, cfg: EvaluateParams) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """({system: {metric: per-example score}}, the BERTScore record), continuations against references."""
    log.info("scoring %d test notes for %s", len(ex.rows), ", ".join(ex.systems))
    scores = {name: scoring.rouge_scores(preds, ex.refs) for name, preds in ex.systems.items()}
    bert, info = _bertscore(ex.systems, ex.refs, [r["subject_id"] for r in ex.rows], cfg)
    for name in ex.systems:
        scores[name].update(bert[name])
    return scores, info


def score_study_way(ex: Examples, cfg: EvaluateParams) -> dict[str, dict[str, np.ndarray]]:
    """The study's scoring, as a diagnostic: prompt + continuation against prompt + reference (the whole note),
    for every system and for an empty continuation."""
    prompts = [r["prompt"] for r in ex.rows]
    hyps = {name: [f"{p} {c}".strip() for p, c in zip(prompts, conts)]
            for name, conts in {**ex.systems, "empty": [""] * len(prompts)}.items()}
    notes = [f"{p} {t}" for p, t in zip(prompts, ex.refs)]
    scores = {name: scoring.rouge_scores(h, notes) for name, h in hyps.items()}
    bert, _ = _bertscore(hyps, notes, [r["subject_id"] for r in ex.rows], cfg)
    for name in hyps:
        scores[name].update(bert[name])
    return scores


def _bertscore(systems: dict[str, list[str]], refs: list[str], patients: list, cfg: EvaluateParams):
    """Raw BERTScore of every system, plus *_rescaled when `evaluate.bertscore_rescale` (bert_score's own
    baseline file for its hub encoders; else in-domain: mismatched references of *different* patients)."""
    enc = scoring.load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed)
    info: dict[str, Any] = {"model": cfg.bertscore_model, "layer": enc.layer, "idf": cfg.bertscore_idf,
                            "dtype": cfg.bertscore_dtype, "rescaled_by": None}
    to_score = dict(systems)
    official = scoring.official_baseline(cfg.bertscore_model, enc.layer) if cfg.bertscore_rescale else None
    if cfg.bertscore_rescale and official is None:
        to_score["__mismatched__"] = [refs[j] for j in other_patient_pairs(patients, cfg.seed)]
    bert = scoring.bertscore_many(to_score, refs, cfg)
    mismatched = bert.pop("__mismatched__", None)
    if official is not None:
        base, info["rescaled_by"] = dict(zip(BERTSCORE_KEYS, official)), "bert_score baseline file"
    elif mismatched is not None:
        base = {k: float(v.mean()) for k, v in mismatched.items()}
        info["rescaled_by"] = "in-domain: the mean score of test references paired with another patient's"
    if info["rescaled_by"]:
        info.update({f"baseline_{k.split('_')[1]}": b for k, b in base.items()})
        for scores in bert.values():
            scores.update({f"{k}_rescaled": scoring.rescale(scores[k], base[k]) for k in BERTSCORE_KEYS})
    return bert, info


def other_patient_pairs(patients: list, seed: int) -> np.ndarray:
    """For each example, a seeded partner example of a different patient (itself when all share one patient)."""
    rng = np.random.default_rng([seed, 11])
    patients = np.asarray([str(p) for p in patients])
    partner = np.arange(len(patients))
    for i in range(len(patients)):
        others = np.flatnonzero(patients != patients[i])
        if len(others):
            partner[i] = rng.choice(others)
    return partner


def likelihood(rows: list[dict], refs: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{metric: (numerator, denominator) per example} of the likelihood metrics, or None when the generations
    carry no target NLL: bits per byte (NLL / ln 2 over bytes), per-word and per-token perplexity (their logs)."""
    try:
        nll = np.array([float(r["target_nll"]) for r in rows])
        tokens = np.array([float(r["target_tokens"]) for r in rows])
    except (KeyError, TypeError, ValueError):
        return None
    if tokens.sum() <= 0 or not np.all(np.isfinite(nll)):
        return None
    return {"bits_per_byte": (nll / math.log(2), np.array([scoring.target_bytes(t) for t in refs], float)),
            "word_perplexity": (nll, np.array([len(t.split()) for t in refs], float)),
            "token_perplexity": (nll, tokens)}


# ------------------------------------------------------------------------------------------ intervals
class Intervals:
    """Every per-example column of every system, resampled together by patient (so differences are paired)."""

    def __init__(self, ex: Examples, scores: dict[str, dict[str, np.ndarray]], cfg: EvaluateParams) -> None:
        self.columns: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for system, by_metric in scores.items():
            for metric, values in by_metric.items():
                self.columns[system, metric] = (values, np.ones_like(values))
        for v, rows in ex.generations.items():
            for metric, pair in (likelihood(rows, ex.refs) or {}).items():
                self.columns[v, metric] = pair
        self.resampling = scoring.Resampling.by([r["subject_id"] for r in ex.rows])
        keys = list(self.columns)
        reps = scoring.replicates(np.stack([self.columns[k][0] for k in keys], 1), self.resampling,
                                  cfg.bootstrap_samples, cfg.seed, np.stack([self.columns[k][1] for k in keys], 1))
        self.reps = {k: reps[:, i] for i, k in enumerate(keys)}

    def point(self, system: str, metric: str) -> float:
        num, den = self.columns[system, metric]
        return float(num.sum() / den.sum())

    def block(self, system: str) -> dict[str, float]:
        """metric, metric_ci_low, metric_ci_high of every metric of `system` (perplexities as exp of log-means)."""
        out = {}
        for (s, metric), reps in self.reps.items():
            if s != system:
                continue
            point, (low, high) = self.point(s, metric), scoring.interval(self.point(s, metric), reps)
            f = math.exp if metric.endswith("perplexity") else float
            out.update({metric: f(point), f"{metric}_ci_low": f(low), f"{metric}_ci_high": f(high)})
        return out

    def difference(self, a: str, b: str, metric: str) -> dict[str, Any]:
        """The paired difference a − b of `metric` over the same resampled patients, with its verdict."""
        point = self.point(a, metric) - self.point(b, metric)
        low, high = scoring.interval(point, self.reps[a, metric] - self.reps[b, metric])
        return {metric: point, f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                f"{metric}_verdict": scoring.verdict(low, high)}

    def note_level(self, system: str) -> dict[str, float]:
        """Intervals that treat every note as independent (normal approximation), for comparison only."""
        out = {}
        for (s, metric), (num, den) in self.columns.items():
            if s == system and not metric.endswith("perplexity") and metric != "bits_per_byte":
                out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = scoring.normal_interval(num / den)
        return out


def differences(iv: Intervals, models: list[str], baselines_: list[str]) -> dict[str, dict[str, Any]]:
    """finetuned − pretrained, − each baseline, and − the best baseline of each metric (by its point estimate)."""
    pre, fine = VARIANTS
    if fine not in models:
        return {}
    metrics = [m for m in (*HEADLINE, "bits_per_byte") if (fine, m) in iv.columns]
    out: dict[str, dict[str, Any]] = {}
    for other in ([pre] if pre in models else []) + baselines_:
        out[f"{fine}-{other}"] = {k: v for m in metrics if (other, m) in iv.columns
                                  for k, v in iv.difference(fine, other, m).items()}
    if baselines_:
        best: dict[str, Any] = {}
        for m in HEADLINE:
            name = max(baselines_, key=lambda b: iv.point(b, m))
            best.update(iv.difference(fine, name, m), **{f"{m}_baseline": name})
        out[f"{fine}-best_baseline"] = best
    return out


# ------------------------------------------------------------------------------------------ the stage
def summarise(ex: Examples, scores: dict, study: dict, info: dict, cfg: EvaluateParams, cap: int | None) -> dict:
    """The detail eval.json (its shape: artifacts.py)."""
    iv = Intervals(ex, scores, cfg)
    baseline_names = [b for b in ex.systems if b not in ex.generations]
    clusters = iv.resampling.n_clusters
    warning = (f"only {clusters} test patients: intervals resample patients, and so few say little about new "
               f"patients (at least {scoring.MIN_CLUSTERS} wanted)") if clusters < scoring.MIN_CLUSTERS else None
    lengths: dict[str, Any] = {"cap_words": cap, "reference_mean_words": float(np.mean([len(t.split()) for t in ex.refs]))}
    for name, words in ex.raw_words.items():
        lengths[name] = {"mean_words": float(np.mean(words)),
                         "mean_words_scored": float(np.mean([len(t.split()) for t in ex.systems[name]]))}
    for v, rows in ex.generations.items():
        lengths[v]["stopped_at_budget_share"] = float(np.mean([bool(r.get("stopped_at_budget")) for r in rows]))
    return _round({
        "n_examples": len(ex.rows), "copy_forward_fallbacks": ex.fallbacks,
        "bootstrap": {"unit": iv.resampling.unit, "clusters": clusters, "samples": cfg.bootstrap_samples,
                      "seed": cfg.seed, "confidence": scoring.CONFIDENCE, "warning": warning},
        "bertscore": info,
        "models": {v: iv.block(v) for v in ex.models},
        "baselines": {b: iv.block(b) for b in baseline_names},
        "differences": differences(iv, ex.models, baseline_names),
        "note_level": {name: iv.note_level(name) for name in ex.systems},
        "study_way": {"why": STUDY_WAY_WHY, "systems": {name: {k: float(v.mean()) for k, v in s.items()}
                                                        for name, s in study.items()}},
        "lengths": lengths,
    })


def _round(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    return round(obj, DECIMALS) if isinstance(obj, float) else obj


def _write_per_example(path: Path, ex: Examples, scores: dict[str, dict[str, np.ndarray]]) -> None:
    """One line per (note, system): note_id, subject_id (the resampling cluster), variant, every score, and for a
    model the reference's NLL in bits and its bytes (their sums' ratio is bits per byte); no note text."""
    keys = list(next(iter(scores.values())))
    likely = {v: likelihood(rows, ex.refs) for v, rows in ex.generations.items()}
    with atomic_open(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["note_id", "subject_id", "variant", *keys, "nll_bits", "bytes"])
        for system, by_key in scores.items():
            bits, nbytes = (likely.get(system) or {}).get("bits_per_byte", ((), ()))
            for i, row in enumerate(ex.rows):
                extra = [f"{bits[i]:.{DECIMALS}f}", f"{nbytes[i]:.0f}"] if len(bits) else ["", ""]
                writer.writerow([row["note_id"], row["subject_id"], system,
                                 *(f"{by_key[k][i]:.{DECIMALS}f}" for k in keys), *extra])


def evaluate(cfg: EvaluateParams, generation_paths: list[Path], prepared: Path, cap: int | None,
             per_example: Path) -> dict[str, Any]:
    """Score every generations file and baseline on the test notes the generations cover (identical across files),
    in test-split order; write their per-example scores to `per_example`; return the detail metrics."""
    if not generation_paths:
        raise NoteLMError("evaluate: no generations file given")
    ex = read_examples(cfg, generation_paths, prepared, cap)
    scores, info = score_continuations(ex, cfg)
    study = score_study_way(ex, cfg)
    detail = summarise(ex, scores, study, info, cfg, cap)
    _write_per_example(per_example, ex, scores)
    return detail


def run(params: dict[str, Any], generations: list[str | Path] | None = None, prepared: str | Path = PREPARED_DIR,
        metrics: str | Path = EVAL_METRICS, detail: str | Path = EVAL_DETAIL,
        per_example: str | Path = PER_EXAMPLE) -> dict[str, Any]:
    """The evaluate stage: the `evaluate:` params and data.max_target_words; generations files (default
    generations/{pretrained,finetuned}.jsonl). Writes the detail, the headline and the per-example scores."""
    cfg = load_section(EvaluateParams, params, "evaluate")
    cap = load_section(DataParams, params, "data").max_target_words
    paths = [Path(p) for p in generations] if generations else [generations_path(v) for v in VARIANTS]
    result = evaluate(cfg, paths, Path(prepared), cap, Path(per_example))
    write_json(detail, result)
    write_json(metrics, headline(result))
    if result["bootstrap"]["warning"]:
        log.warning("evaluate: %s", result["bootstrap"]["warning"])
    log.info("wrote %s, %s and %s", metrics, detail, per_example)
    return headline(result)


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("evaluate", __doc__)
    parser.add_argument("--generations", nargs="+", help="generations files (default: generations/"
                        f"{{{','.join(VARIANTS)}}}.jsonl); the file name is the variant")
    parser.add_argument("--prepared", default=PREPARED_DIR, help=f"split directory (default: {PREPARED_DIR})")
    parser.add_argument("--metrics", default=EVAL_METRICS, help=f"headline metrics (default: {EVAL_METRICS})")
    parser.add_argument("--detail", default=EVAL_DETAIL, help=f"all metrics (default: {EVAL_DETAIL})")
    parser.add_argument("--per-example", default=PER_EXAMPLE, help=f"per-example scores (default: {PER_EXAMPLE})")
    args = parser.parse_args(argv)
    return runner.execute("evaluate", args, lambda params: run(params, args.generations, args.prepared, args.metrics,
                                                               args.detail, args.per_example))


if __name__ == "__main__":
    raise SystemExit(main())
