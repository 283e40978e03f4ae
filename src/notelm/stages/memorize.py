"""The `memorize` stage: does a model give its training notes back? → metrics/memorization.json (a gate).

    python -m notelm.stages.memorize --base models/base/smollm2-135m --finetuned models/finetuned \
        --data data/prepared --generations generations/pretrained.jsonl generations/finetuned.jsonl \
        --out generations/extraction.jsonl --metrics metrics/memorization.json \
        --detail metrics/detail/memorization.json

The audit proves that test notes are not in train; this stage checks the other direction, what a data-use
agreement asks before a model trained on credentialed notes is shared or served. For the pre-trained model
(the reference: it never saw these notes) and the fine-tuned one, per variant:

    exact_train, exact_test, exact_gap        share of notes whose next m tokens the model writes exactly, from
                                              their first k (Carlini et al. 2022, "Quantifying memorization");
                                              `memorize.sample` test notes, each paired with the train note
                                              nearest in token length; gap = train − test, with a patient-
                                              clustered 95 % interval (_ci_low, _ci_high) and a verdict
    lcs_*                                     mean longest run of tokens shared with the true continuation
    rougeL_*                                  ROUGE-L of the continuation against the true one
    canary_exposure_max, canary_exposure_mean exposure in bits of the canaries train.canaries planted in train
    control_exposure_mean                     ... of as many never-planted controls (Carlini et al. 2019; at most
                                              log2(memorize.canary_candidates + 1) bits; src/notelm/training/canaries.py)
    identifiers                               identifier-like strings outside [**...**] placeholders in every
                                              continuation the variant wrote (generate's and this stage's;
                                              src/notelm/privacy/identifiers.py); references.identifiers: in the test
                                              references themselves

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
    checkpoint_id,
    extract,
    gap,
    matched_pairs,
    note_ids,
    score_extraction,
)
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


class MemorizationError(NoteLMError):
    """The fine-tuned model gives its training notes back beyond `memorize.fail_on`."""


def extraction(model, tokenizer, train: list[dict], test: list[dict], cfg: MemorizeParams):
    """The extraction measures of one model: (block of means and train − test gaps, one output line per note)."""
    k, m = cfg.prefix_tokens, cfg.suffix_tokens
    pairs = matched_pairs(note_ids(tokenizer, train, k + m), note_ids(tokenizer, test, k + m), cfg.sample, cfg.seed)
    if not pairs:
        raise NoteLMError(f"memorize: no train or test note has {k + m} tokens (memorize.prefix_tokens + "
                          "memorize.suffix_tokens); lower them in params.yaml")
    notes = [tr for tr, _ in pairs] + [te for _, te in pairs]  # train side first, then test: 2n notes
    seqs = [ids for _, ids in notes]
    written = extract(model, tokenizer, seqs, k, m, cfg.batch_size)
    scores = score_extraction(tokenizer, seqs, written, k, m)
    n, subjects = len(pairs), [row["subject_id"] for row, _ in notes]
    block: dict[str, Any] = {"pairs": n}
    for metric in EXTRACTION:
        train_v, test_v = scores[metric][:n], scores[metric][n:]
        block[f"{metric}_train"], block[f"{metric}_test"] = float(train_v.mean()), float(test_v.mean())
        diff = gap(train_v, test_v, subjects[:n], subjects[n:], cfg.bootstrap_samples, cfg.seed)
        block.update({f"{metric}_{key}": value for key, value in diff.items()})
    lines = [{"split": "train" if i < n else "test", "note_id": row["note_id"], "subject_id": row["subject_id"],
              "prompt": decode(tokenizer, ids[:k]), "reference": decode(tokenizer, ids[k:k + m]),
              "completion": decode(tokenizer, w), **{metric: float(scores[metric][i]) for metric in EXTRACTION}}
             for i, ((row, ids), w) in enumerate(zip(notes, written))]
    return block, lines


def canary_block(model, tokenizer, record: dict[str, Any] | None, cfg: MemorizeParams) -> dict[str, Any]:
    """Canary exposure of one model: the headline numbers and the per-canary lists (empty without canaries)."""
    if not record:
        return {}
    bits = canary_exposures(model, tokenizer, record, cfg.canary_candidates, cfg.seed, cfg.batch_size)
    return {"canary_exposure_max": max(bits["planted"]), "canary_exposure_mean": float(np.mean(bits["planted"])),
            "control_exposure_mean": float(np.mean(bits["controls"])), "canary_exposures": bits,
            "canary_exposure_limit": float(np.log2(cfg.canary_candidates + 1))}


def measure(model_dir: Path, trust: bool, splits: dict[str, list[dict]], record: dict | None, cfg: MemorizeParams):
    """Extraction and canaries of the checkpoint in `model_dir`: (block, output lines)."""
    model, tokenizer = load_checkpoint(model_dir, "float32", trust)
    tick = time.perf_counter()
    block, lines = extraction(model, tokenizer, splits["train"], splits["test"], cfg)
    block.update(canary_block(model, tokenizer, record, cfg))
    log.info("memorize %s: exact train %.3f test %.3f, lcs train %.2f test %.2f, canary exposure max %s bits (%.0fs)",
             model_dir, block["exact_train"], block["exact_test"], block["lcs_train"], block["lcs_test"],
             f"{block['canary_exposure_max']:.2f}" if "canary_exposure_max" in block else "-", time.perf_counter() - tick)
    del model
    gc.collect()
    return block, lines


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
    record = (read_json(dirs["finetuned"] / TRAIN_RECORD) or {}).get("canaries")
    blocks, lines = {}, []
    for variant, model_dir in dirs.items():
        blocks[variant], mine = measure(model_dir, trust, splits, record, cfg)
        lines += [{"variant": variant, **line} for line in mine]
    written = {variant_of(p): [r["completion"] for r in read_jsonl(p)] for p in paths.generations}
    for variant, block in blocks.items():
        block[IDENTIFIERS] = identifiers.count(written.get(variant, []) +
                                               [x["completion"] for x in lines if x["variant"] == variant])
    references = identifiers.count([r["target"] for r in scored(splits["test"])])
    problems = check(blocks, cfg)
    gate = "pass" if not problems else "fail" if cfg.enforce else "fail (warned)"
    write_jsonl(paths.out, lines)
    settings = {k: getattr(cfg, k) for k in ("sample", "prefix_tokens", "suffix_tokens", "canary_candidates")}
    detail = {**blocks, REFERENCES: {IDENTIFIERS: references, "notes": len(scored(splits["test"]))},
              GATE: gate, "problems": problems, "settings": {**settings, "fail_on": cfg.fail_on},
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
