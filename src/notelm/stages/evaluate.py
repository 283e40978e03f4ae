"""The `evaluate` stage: every system's continuation of every test prompt, scored against the real rest of the note.

Systems are the model variants (one generations file each; its name is the variant) and model-free
baselines built from the same test prompts (src/notelm/evaluation/baselines.py, its registry; retrieval:
src/notelm/evaluation/retrieval.py), all scored the same way on the same examples:

    chance         the target of a random train note (seeded): what any note of this ward shares
    copy_forward   the target of the same patient's most recent earlier note of the test split (scored or
                   context): that note's words after *its own* cut, which need not be where this prompt ends
    aligned_copy   the words that follow, in that same earlier note, the place where this prompt's end falls
                   (baselines.align): the chart, copied as well as a model-free rule can. Both chart
                   baselines fall back to `chance` for a patient's first note (counted as chart_fallbacks)
    prompt_tail    the prompt's last words, as many as the reference has
    retrieval      the target of the train note whose prompt is nearest by TF-IDF cosine
    copy_last_sentence   the prompt's last sentence (kept for comparison with earlier runs; not a default)

Every continuation, model or baseline, is cut at data.max_target_words words (the cap of the references);
src/notelm/evaluation/examples.py reads the generations and the test split, cross-checks them and makes that cut.
Fact fidelity (src/notelm/evaluation/facts.py): the clinical facts each continuation states — vital signs, oxygen,
drips and medications, lines, findings — sorted against the note's whole rest and the chart (the prompt and
the patient's earlier notes of the split): matched, contradicted, carried (only the chart states it) or
invented (stated nowhere), as rates over facts written. Templating (src/notelm/evaluation/templating.py): the mean
ROUGE-L between continuations of different patients, beside the references' own.
Scores: ROUGE-1/2/L/Lsum and BERTScore P/R/F1 (src/notelm/evaluation/rouge.py, src/notelm/evaluation/bertscore.py); for models also the likelihood of
the reference, as bits per byte and per-word perplexity (comparable across tokenizers) and per-token
perplexity (tokenizer-specific). Every interval resamples test patients (clustered bootstrap, paired
across systems); differences — fine-tuned − pre-trained, − each baseline, − the best baseline per metric —
carry a verdict read from their interval (src/notelm/evaluation/intervals.py, src/notelm/evaluation/bootstrap.py). The note-level interval (notes as independent) is kept,
labelled, for comparison. The study's way of scoring (prompt + continuation against the whole cleaned note,
uncapped) is a labelled diagnostic in `study_way`.

Outputs: metrics/detail/eval.json (everything), metrics/eval.json (the headline `dvc exp show` lists:
names.headline), eval/per_example.csv (note ids and scores only, no note text).

    python -m notelm.stages.evaluate --generations generations/pretrained.jsonl generations/finetuned.jsonl \\
        --prepared data/prepared --metrics metrics/eval.json --detail metrics/detail/eval.json \\
        --per-example eval/per_example.csv
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.data import DataParams
from notelm.config.evaluate import EvaluateParams
from notelm.config.names import BERTSCORE_KEYS, FACT_CLASSES, FACT_ERRORS, FACTS, VARIANTS, headline
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import atomic_open, write_json
from notelm.core.loader import load_section
from notelm.core.paths import CHART_AWARE_GENERATIONS, EVAL_DETAIL, FACT_LINES, EVAL_METRICS, PER_EXAMPLE, PREPARED_DIR, generations_path
from notelm.evaluation import bertscore, bootstrap, extraction, facts, rouge, templating
from notelm.evaluation.examples import Examples, read_examples
from notelm.evaluation.intervals import Intervals, differences, likelihood

DECIMALS = 6  # metrics are rounded so tiny float noise never changes eval.json
STUDY_WAY_WHY = ("The original study scored prompt + continuation against the whole note (HF pipeline() returns "
                 "the full text by default): the prompt, copied verbatim, matches half the reference, so even an "
                 "empty continuation scores high. Shown only as a diagnostic; the real scores are continuation-only.")

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


# ------------------------------------------------------------------------------------------ scores
def score_continuations(ex: Examples, cfg: EvaluateParams) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """({system: {metric: per-example score}}, the BERTScore record), continuations against references."""
    log.info("scoring %d test notes for %s", len(ex.rows), ", ".join(ex.systems))
    scores = {name: rouge.rouge_scores(preds, ex.refs) for name, preds in ex.systems.items()}
    bert, info = _bertscore(ex.systems, ex.refs, [r["subject_id"] for r in ex.rows], cfg)
    for name in ex.systems:
        scores[name].update(bert[name])
    for name, counts in fact_counts(ex).items():
        scores[name].update(counts)
    return scores, info


def fact_counts(ex: Examples) -> dict[str, dict[str, np.ndarray]]:
    """{system: {facts, facts_<class>: per-example count}}: each continuation's facts (facts.extract) sorted
    against its note's whole rest and its chart (facts.classify)."""
    rests = [facts.extract(t) for t in ex.rests]
    charts = [facts.extract(t) for t in ex.charts]
    out = {}
    for name, texts in ex.systems.items():
        sorted_ = [facts.classify(facts.extract(t), r, c) for t, r, c in zip(texts, rests, charts)]
        out[name] = {FACTS: np.array([f.written for f in sorted_], float),
                     **{f"facts_{k}": np.array([getattr(f, k) for f in sorted_], float) for k in FACT_CLASSES},
                     FACT_ERRORS: np.array([f.errors for f in sorted_], float)}
    return out


def templating_metrics(ex: Examples, seed: int) -> dict[str, Any]:
    """{pairs, reference, <system>: mean ROUGE-L between texts of different patients} (evaluation/templating.py)."""
    pairs = templating.patient_pairs([r["subject_id"] for r in ex.rows], seed)
    out: dict[str, Any] = {"pairs": len(pairs), "reference": templating.cross_patient_similarity(ex.refs, pairs)}
    out.update({name: templating.cross_patient_similarity(texts, pairs) for name, texts in ex.systems.items()})
    return out


def score_study_way(ex: Examples, cfg: EvaluateParams) -> dict[str, dict[str, np.ndarray]]:
    """The study's scoring, as a diagnostic: prompt + continuation against prompt + the note's whole rest (the
    whole cleaned note, uncapped), for every system and for an empty continuation."""
    prompts = [r["prompt"] for r in ex.rows]
    hyps = {name: [f"{p} {c}".strip() for p, c in zip(prompts, conts)]
            for name, conts in {**ex.systems, "empty": [""] * len(prompts)}.items()}
    notes = [f"{p} {t}" for p, t in zip(prompts, ex.rests)]
    scores = {name: rouge.rouge_scores(h, notes) for name, h in hyps.items()}
    bert, _ = _bertscore(hyps, notes, [r["subject_id"] for r in ex.rows], cfg)
    for name in hyps:
        scores[name].update(bert[name])
    return scores


def _bertscore(systems: dict[str, list[str]], refs: list[str], patients: list, cfg: EvaluateParams):
    """Raw BERTScore of every system, plus *_rescaled when `evaluate.bertscore_rescale` (bert_score's own
    baseline file for its hub encoders; else in-domain: mismatched references of *different* patients)."""
    enc = bertscore.load_encoder(cfg.bertscore_model, cfg.bertscore_layer, cfg.seed)
    info: dict[str, Any] = {"model": cfg.bertscore_model, "layer": enc.layer, "idf": cfg.bertscore_idf,
                            "dtype": cfg.bertscore_dtype, "rescaled_by": None}
    to_score = dict(systems)
    official = bertscore.official_baseline(cfg.bertscore_model, enc.layer) if cfg.bertscore_rescale else None
    if cfg.bertscore_rescale and official is None:
        to_score["__mismatched__"] = [refs[j] for j in other_patient_pairs(patients, cfg.seed)]
    bert = bertscore.bertscore_many(to_score, refs, cfg)
    mismatched = bert.pop("__mismatched__", None)
    if official is not None:
        base, info["rescaled_by"] = dict(zip(BERTSCORE_KEYS, official)), "bert_score baseline file"
    elif mismatched is not None:
        base = {k: float(v.mean()) for k, v in mismatched.items()}
        info["rescaled_by"] = "in-domain: the mean score of test references paired with another patient's"
    if info["rescaled_by"]:
        info.update({f"baseline_{k.split('_')[1]}": b for k, b in base.items()})
        for scores in bert.values():
            scores.update({f"{k}_rescaled": bertscore.rescale(scores[k], base[k]) for k in BERTSCORE_KEYS})
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


# ------------------------------------------------------------------------------------------ the stage
def summarise(ex: Examples, scores: dict, study: dict, info: dict, cfg: EvaluateParams, cap: int | None,
              extraction_: dict[str, Any]) -> dict:
    """The detail eval.json (its shape: config/names.py); `extraction_`: the fact extractor measured on each
    labelled set (evaluation/extraction.py)."""
    iv = Intervals(ex, scores, cfg)
    baseline_names = [b for b in ex.systems if b not in ex.generations]
    clusters = iv.resampling.n_clusters
    warning = (f"only {clusters} test patients: intervals resample patients, and so few say little about new "
               f"patients (at least {bootstrap.MIN_CLUSTERS} wanted)") if clusters < bootstrap.MIN_CLUSTERS else None
    return _round({
        "n_examples": len(ex.rows), "chart_fallbacks": ex.fallbacks,
        "bootstrap": {"unit": iv.resampling.unit, "clusters": clusters, "samples": cfg.bootstrap_samples,
                      "seed": cfg.seed, "confidence": bootstrap.CONFIDENCE, "warning": warning},
        "bertscore": info,
        "models": {v: iv.block(v) for v in ex.models},
        "baselines": {b: iv.block(b) for b in baseline_names},
        "differences": differences(iv, ex.models, baseline_names),
        "note_level": {name: iv.note_level(name) for name in ex.systems},
        "study_way": {"why": STUDY_WAY_WHY, "systems": {name: {k: float(v.mean()) for k, v in s.items()}
                                                        for name, s in study.items()}},
        "lengths": lengths_of(ex, cap),
        "templating": templating_metrics(ex, cfg.seed),
        "facts": {"reference_per_note": float(np.mean([len(facts.extract(t)) for t in ex.rests])),
                  "chart_per_note": float(np.mean([len(facts.extract(t)) for t in ex.charts])),
                  "extraction": extraction_},
    })


def lengths_of(ex: Examples, cap: int | None) -> dict[str, Any]:
    """Words written and scored per system, and the continuations that stopped short of the cap: for a model,
    by why it stopped (decoding.STOPS, from the generations' `stop`); for a baseline, its source ran out."""
    refs = [len(t.split()) for t in ex.refs]
    out: dict[str, Any] = {"cap_words": cap, "reference_mean_words": float(np.mean(refs))}
    wanted = [min(r, cap) if cap is not None else r for r in refs]
    for name, words in ex.raw_words.items():
        short = [w < r for w, r in zip(words, wanted)]  # fewer words than its reference has, up to the cap
        out[name] = {"mean_words": float(np.mean(words)), "short": int(sum(short)),
                     "mean_words_scored": float(np.mean([len(t.split()) for t in ex.systems[name]]))}
        if name in ex.generations:
            stops = [g.get("stop", "unknown") for g in ex.generations[name]]
            out[name]["short_by"] = {s: sum(1 for k, st in zip(short, stops) if k and st == s) for s in sorted(set(stops))}
    return out


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
             per_example: Path, fact_lines: dict[str, Path]) -> dict[str, Any]:
    """Score every generations file and baseline on the test notes the generations cover (identical across files),
    in test-split order; write their per-example scores to `per_example`; return the detail metrics, with the fact
    extractor measured on each labelled set of `fact_lines`."""
    if not generation_paths:
        raise NoteLMError("evaluate: no generations file given")
    measured = {name: extraction.measure(extraction.read_labelled(path)) for name, path in fact_lines.items()}
    ex = read_examples(cfg, generation_paths, prepared, cap)
    scores, info = score_continuations(ex, cfg)
    study = score_study_way(ex, cfg)
    detail = summarise(ex, scores, study, info, cfg, cap, measured)
    _write_per_example(per_example, ex, scores)
    return detail


@dataclass(frozen=True)
class Paths:
    """The evaluate stage's inputs and outputs."""

    generations: tuple[str, ...] = (*(str(generations_path(v)) for v in VARIANTS), CHART_AWARE_GENERATIONS)
    """Generations files; each file's name is its variant."""
    prepared: str = PREPARED_DIR
    """Split directory (train for the baselines, test for the references)."""
    metrics: str = EVAL_METRICS
    """Headline metrics (what `dvc exp show` lists)."""
    detail: str = EVAL_DETAIL
    """Every metric, interval and difference."""
    per_example: str = PER_EXAMPLE
    """Per-example scores (note ids and scores, no note text)."""
    fact_lines: tuple[str, ...] = tuple(FACT_LINES.values())
    """Labelled nursing lines the fact extractor is measured on: the development set, then the held-out set."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The evaluate stage: the `evaluate:` params and data.max_target_words over `paths`. Writes the detail,
    the headline and the per-example scores; returns the headline."""
    cfg = load_section(EvaluateParams, params)
    cap = load_section(DataParams, params).max_target_words
    if len(paths.fact_lines) != len(FACT_LINES):
        raise NoteLMError(f"evaluate: --fact-lines expects {len(FACT_LINES)} files ({', '.join(FACT_LINES)}), got "
                          f"{len(paths.fact_lines)}")
    result = evaluate(cfg, [Path(p) for p in paths.generations], Path(paths.prepared), cap, Path(paths.per_example),
                      dict(zip(FACT_LINES, map(Path, paths.fact_lines))))
    write_json(paths.detail, result)
    write_json(paths.metrics, headline(result))
    if result["bootstrap"]["warning"]:
        log.warning("evaluate: %s", result["bootstrap"]["warning"])
    log.info("wrote %s, %s and %s", paths.metrics, paths.detail, paths.per_example)
    return headline(result)


def main(argv: list[str] | None = None) -> int:
    return runner.main("evaluate", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
