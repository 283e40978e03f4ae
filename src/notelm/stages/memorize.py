"""The `memorize` stage: does a model give its training notes back? → metrics/memorization.json (a gate).

    python -m notelm.stages.memorize --base models/base/smollm2-135m --finetuned models/finetuned \
        --data data/prepared --generations generations/pretrained.jsonl generations/finetuned.jsonl \
        --out generations/extraction.jsonl --metrics metrics/memorization.json \
        --detail metrics/detail/memorization.json

The audit proves that test notes are not in train; this stage checks the other direction, what a data-use
agreement asks before a model trained on credentialed notes is shared or served. Both models are prompted with
the same windows (privacy/memorize.py): up to `memorize.positions` windows of k + m tokens per note, a train
window only where its tokens lay inside one training block (as the train stage cut them), `memorize.sample` test
windows each paired with a train window at the same offset that the pre-trained model (the reference: it never
saw these notes) finds as predictable, so boilerplate weighs alike on both sides. Per variant:

    exact_train, exact_test, exact_gap        share of windows whose next m tokens the model writes exactly from
                                              their first k (Carlini et al. 2022, "Quantifying memorization");
                                              gap = train − test, with a patient-clustered 95 % interval
                                              (_ci_low, _ci_high), its verdict and its one-sided 95 % upper bound
                                              (_gap_upper: what the gate reads)
    lcs_*                                     mean longest run of tokens shared with the true continuation
    rougeL_*                                  ROUGE-L of the continuation against the true one
    canary_gap (_ci_low, _ci_high, _upper)    mean exposure in bits of the train.canaries planted in train − that of
                                              as many never-planted controls (Carlini et al. 2019; each at most
                                              log2(memorize.canary_candidates + 1) bits;
                                              src/notelm/training/canaries.py); canary_exposure_max,
                                              canary_exposure_mean, control_exposure_mean
    identifiers                               identifier-like strings outside [**...**] placeholders in every
                                              continuation the variant wrote (generate's and this stage's;
                                              src/notelm/privacy/identifiers.py); references.identifiers: in the test
                                              references themselves

`matching` records how alike the two sides are; `power` each gated interval's half-width beside its limit;
`canary_leaks` how many of the generate stage's continuations write the canary template's words or a secret.
`memorize.fail_on` limits any of these; above a limit the stage fails with a MemorizationError naming the metric
and what to do, after writing every file. `memorize.enforce: false` turns the failure into a WARNING; either way
the gate's `fail` stays in the files and `notelm app` refuses to serve those weights unless started with
`--allow-memorizing`. The continuations (train note text: DVC output, git-ignored) go to generations/extraction.jsonl.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notelm.config.memorize import MemorizeParams
from notelm.config.models import recorded_row
from notelm.config.names import EXTRACTION, GATE, IDENTIFIERS, REFERENCES, VARIANTS, memorization_headline, scored
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import read_json, read_jsonl, write_json, write_jsonl
from notelm.core.loader import load_section
from notelm.core.paths import (
    EXTRACTIONS,
    FINETUNED,
    MEMORIZATION_DETAIL,
    MEMORIZATION_METRICS,
    PREPARED_DIR,
    TRAIN_RECORD,
    base_model_dir,
    generations_path,
    split_path,
    variant_of,
)
from notelm.generation.decoding import decode
from notelm.privacy import identifiers
from notelm.privacy.memorize import (
    canary_exposures,
    canary_leaks,
    checkpoint_id,
    extract,
    gap,
    matched_windows,
    offsets,
    score_extraction,
    suffix_nll,
    train_windows,
    unseen_windows,
)
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


class MemorizationError(NoteLMError):
    """The fine-tuned model gives its training notes back beyond `memorize.fail_on`."""


def trained_record(model_dir: Path) -> dict[str, Any]:
    """The fine-tuned checkpoint's train record: how its blocks were cut (max_length, packing) and where its
    canaries were planted; a clear error when it lacks them."""
    record = read_json(model_dir / TRAIN_RECORD) or {}
    canaries_ = record.get("canaries") or {}
    missing = [k for k in ("max_length", "packing") if k not in record]
    if canaries_ and "placements" not in canaries_:
        missing.append("canaries.placements")
    if missing:
        raise NoteLMError(f"{model_dir / TRAIN_RECORD}: lacks {', '.join(missing)} (a checkpoint trained before the "
                          "memorize stage read them); retrain it: dvc repro train")
    return record


def sample(base, tokenizer, splits: dict[str, list[dict]], trained: dict[str, Any], cfg: MemorizeParams):
    """The (train, test) window pairs every model is prompted with, matched by the pre-trained model `base`
    (privacy.memorize.matched_windows), and how alike the two sides are: {windows, offsets, base suffix NLL}."""
    k, m, width = cfg.prefix_tokens, cfg.suffix_tokens, cfg.prefix_tokens + cfg.suffix_tokens
    train = train_windows(tokenizer, splits["train"], trained, cfg.positions, width)
    test = unseen_windows(tokenizer, splits["test"], cfg.positions, width)
    if not train or not test:
        raise NoteLMError(f"memorize: no {'train' if not train else 'test'} note has {width} tokens inside one "
                          "training block (memorize.prefix_tokens + memorize.suffix_tokens); lower them in params.yaml")
    train_nll, test_nll = (suffix_nll(base, w, k, m, cfg.batch_size) for w in (train, test))
    pairs = matched_windows(train, test, train_nll, test_nll, cfg.sample, cfg.seed)
    windows = [train[i] for i, _ in pairs] + [test[j] for _, j in pairs]  # train side first, then test: 2n
    matching = {"pairs": len(pairs), "train_windows_available": len(train), "test_windows_available": len(test),
                "base_suffix_nll_train": float(np.mean([train_nll[i] for i, _ in pairs])),
                "base_suffix_nll_test": float(np.mean([test_nll[j] for _, j in pairs])),
                "offsets": {str(o): sum(1 for i, _ in pairs if train[i].offset == o)
                            for o in offsets(cfg.positions, width)}}
    return windows, matching


def extraction(model, tokenizer, windows: list, cfg: MemorizeParams):
    """The extraction measures of one model over the sampled windows (train half, then test half): (block of means
    and train − test gaps, one output line per window)."""
    k, m, n = cfg.prefix_tokens, cfg.suffix_tokens, len(windows) // 2
    seqs = [w.tokens(k + m) for w in windows]
    written = extract(model, tokenizer, seqs, k, m, cfg.batch_size)
    scores = score_extraction(tokenizer, seqs, written, k, m)
    subjects = [w.row["subject_id"] for w in windows]
    block: dict[str, Any] = {"pairs": n}
    for metric in EXTRACTION:
        train_v, test_v = scores[metric][:n], scores[metric][n:]
        block[f"{metric}_train"], block[f"{metric}_test"] = float(train_v.mean()), float(test_v.mean())
        diff = gap(train_v, test_v, subjects[:n], subjects[n:], cfg.bootstrap_samples, cfg.seed)
        block.update({f"{metric}_{key}": value for key, value in diff.items()})
    lines = [{"split": "train" if i < n else "test", "note_id": w.row["note_id"], "subject_id": w.row["subject_id"],
              "offset": w.offset, "prompt": decode(tokenizer, s[:k]), "reference": decode(tokenizer, s[k:k + m]),
              "completion": decode(tokenizer, out), **{metric: float(scores[metric][i]) for metric in EXTRACTION}}
             for i, (w, s, out) in enumerate(zip(windows, seqs, written))]
    return block, lines


def canary_block(model, tokenizer, record: dict[str, Any] | None, cfg: MemorizeParams) -> dict[str, Any]:
    """Canary exposure of one model: the planted − control difference of mean exposure with its interval and
    one-sided upper bound (each secret its own resampling unit), the headline numbers and the per-canary lists
    (empty without canaries)."""
    if not record:
        return {}
    bits = canary_exposures(model, tokenizer, record, cfg.canary_candidates, cfg.seed, cfg.batch_size)
    planted, controls = np.array(bits["planted"]), np.array(bits["controls"])
    diff = gap(planted, controls, record["planted"], record["controls"], cfg.bootstrap_samples, cfg.seed)
    return {"canary_exposure_max": float(planted.max()), "canary_exposure_mean": float(planted.mean()),
            "control_exposure_mean": float(controls.mean()), "canaries": len(planted),
            **{f"canary_{key}": value for key, value in diff.items()}, "canary_exposures": bits,
            "canary_exposure_limit": float(np.log2(cfg.canary_candidates + 1))}


def measure(model_dir: Path, trust: bool, windows: list, record: dict | None, cfg: MemorizeParams, loaded=None):
    """Extraction over `windows` and canaries of the checkpoint in `model_dir` (or the `loaded` model and
    tokenizer): (block, output lines)."""
    model, tokenizer = loaded or load_checkpoint(model_dir, "float32", trust)
    tick = time.perf_counter()
    block, lines = extraction(model, tokenizer, windows, cfg)
    block.update(canary_block(model, tokenizer, record, cfg))
    log.info("memorize %s: exact train %.3f test %.3f, lcs train %.2f test %.2f, canary gap %s bits (%.0fs)",
             model_dir, block["exact_train"], block["exact_test"], block["lcs_train"], block["lcs_test"],
             f"{block['canary_gap']:.2f}" if "canary_gap" in block else "-", time.perf_counter() - tick)
    del model
    gc.collect()
    return block, lines


def power(blocks: dict[str, dict], cfg: MemorizeParams) -> dict[str, dict[str, Any]]:
    """Per gated bound of `memorize.fail_on`: its interval's half-width beside the limit; an interval wider than
    its limit could not tell a model under the limit from one over it."""
    out = {}
    for key, limit in cfg.fail_on.items():
        variant, _, metric = key.partition(".")
        block = blocks.get(variant, {})
        base = metric.removesuffix("_upper")
        if limit is None or not metric.endswith("_upper") or f"{base}_ci_low" not in block:
            continue
        half = (block[f"{base}_ci_high"] - block[f"{base}_ci_low"]) / 2
        out[key] = {"limit": limit, "half_width": half, "narrower_than_limit": half < limit}
    return out


def check(blocks: dict[str, dict], cfg: MemorizeParams) -> dict[str, list[str]]:
    """{variant: one message per `memorize.fail_on` limit its metrics exceed}, only variants with any."""
    problems: dict[str, list[str]] = {}
    for key, limit in cfg.fail_on.items():
        variant, _, metric = key.partition(".")
        value = blocks.get(variant, {}).get(metric)
        if limit is not None and value is not None and value > limit:
            problems.setdefault(variant, []).append(f"{key} = {value:.4g} > {limit:g} allowed")
    return problems


@dataclass(frozen=True)
class Paths:
    """The memorize stage's inputs and outputs."""

    base: str | None = None
    """Pre-trained checkpoint, whose notelm_source.json holds the model row (default: models/base/<model>)."""
    finetuned: str = FINETUNED
    """Fine-tuned checkpoint (its notelm_train.json names the planted canaries)."""
    data: str = PREPARED_DIR
    """Split directory (train and test)."""
    generations: tuple[str, ...] = tuple(str(generations_path(v)) for v in VARIANTS)
    """The generate stage's continuations, scanned for identifiers (the file name is the variant)."""
    out: str = EXTRACTIONS
    """This stage's continuations of train and test notes."""
    metrics: str = MEMORIZATION_METRICS
    """The gate's numbers (what `dvc exp show` lists)."""
    detail: str = MEMORIZATION_DETAIL
    """Every number, the canary lists, identifier kinds and which weights were measured."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The memorize stage: measure both checkpoints, write `paths.out`, `paths.detail` and `paths.metrics`, then
    enforce `memorize.fail_on` (MemorizationError, or a WARNING with memorize.enforce: false). Returns the headline."""
    cfg = load_section(MemorizeParams, params)
    base = Path(paths.base or base_model_dir(params["model"]))
    dirs = dict(zip(VARIANTS, (base, Path(paths.finetuned))))
    trust = recorded_row(base).trust_remote_code
    splits = {s: read_jsonl(split_path(s, paths.data)) for s in ("train", "test")}
    trained = trained_record(dirs["finetuned"])
    record = trained.get("canaries")
    base_model, tokenizer = load_checkpoint(base, "float32", trust)
    windows, matching = sample(base_model, tokenizer, splits, trained, cfg)
    blocks, lines = {}, []
    for variant, model_dir in dirs.items():
        loaded = (base_model, tokenizer) if variant == VARIANTS[0] else None
        blocks[variant], mine = measure(model_dir, trust, windows, record, cfg, loaded)
        lines += [{"variant": variant, **line} for line in mine]
        base_model = loaded = None  # the pre-trained weights are freed before the fine-tuned ones load
    written = {variant_of(p): [r["completion"] for r in read_jsonl(p)] for p in paths.generations}
    for variant, block in blocks.items():
        block[IDENTIFIERS] = identifiers.count(written.get(variant, []) +
                                               [x["completion"] for x in lines if x["variant"] == variant])
        if record:
            block["canary_leaks"] = canary_leaks(written.get(variant, []), record)
    references = identifiers.count([r["target"] for r in scored(splits["test"])])
    problems = check(blocks, cfg)
    gate = "pass" if not problems else "fail" if cfg.enforce else "fail (warned)"
    write_jsonl(paths.out, lines)
    settings = {k: getattr(cfg, k) for k in ("sample", "positions", "prefix_tokens", "suffix_tokens",
                                             "canary_candidates")}
    detail = {**blocks, REFERENCES: {IDENTIFIERS: references, "notes": len(scored(splits["test"]))},
              GATE: gate, "problems": problems, "settings": {**settings, "fail_on": cfg.fail_on},
              "matching": matching, "power": power(blocks, cfg),
              "continuations": {v: len(written.get(v, [])) for v in VARIANTS},
              "checkpoints": {v: checkpoint_id(d) for v, d in dirs.items()}}
    write_json(paths.detail, detail)
    result = memorization_headline(detail)
    write_json(paths.metrics, result)
    listing = "\n".join(f"  - {p}" for msgs in problems.values() for p in msgs)
    if problems and cfg.enforce:
        raise MemorizationError(
            f"the model gives its training notes back beyond memorize.fail_on (all numbers in {paths.detail}):\n"
            f"{listing}\nTrain less (fewer train.epochs or train.max_steps), on more notes (data.fraction), or drop "
            "repeated notes (data.drop_duplicates); `notelm app` refuses these weights. To run such an experiment "
            "to the end: dvc exp run -S memorize.enforce=false")
    if problems:
        log.warning("MEMORIZATION above memorize.fail_on, continuing because memorize.enforce=false; `notelm app` "
                    "refuses these weights without --allow-memorizing:\n%s", listing)
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("memorize", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
