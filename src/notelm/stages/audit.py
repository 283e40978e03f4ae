"""The `audit` stage: how much of the test split (and of val) is already in train → metrics/leakage.json.

    python -m notelm.stages.audit --prepared data/prepared --metrics metrics/leakage.json \
        --detail metrics/detail/leakage.json

metrics/detail/leakage.json holds every metric below; metrics/leakage.json (what `dvc exp show` lists) only
those `audit.fail_on` limits, and `gate`: pass, fail, or fail (warned).

The original study had to redo every number because test notes were in its training set. This stage
reads `data/prepared/{train,val,test}.jsonl` and measures, for the scored test notes against train (a test
patient's context notes are not scored; `data.leak_test_patients` copies some into train on purpose):

    n_train, n_test                  notes in each split
    n_test_subjects                  distinct subject_id in test
    n_test_admissions                distinct non-null hadm_id in test
    subject_overlap                  test subjects that also have notes in train
    subject_overlap_rate               ... as a share of n_test_subjects
    admission_overlap                test admissions that also appear in train
    admission_overlap_rate             ... as a share of n_test_admissions
    exact_dup_test_in_train          test notes whose whole text (prompt + " " + target, whitespace
                                     normalised) is also a train note
    exact_dup_test_in_train_rate       ... as a share of n_test
    target_in_train                  test notes whose (non-empty) target occurs verbatim, as a substring,
                                     inside some train note's text (whitespace normalised, case kept)
    target_in_train_rate               ... as a share of n_test
    ngram13_containment              share of the distinct word 13-grams of test (lowercased `\\w+` words)
                                     that occur in train, as in n-gram decontamination; the 13 is
                                     `audit.ngram`, so the key is `ngram<N>_containment`
    near_dup_test_in_train           test notes with a train note whose set of word `audit.shingle`-grams
                                     has Jaccard similarity >= `audit.minhash_threshold` with theirs
                                     (exact duplicates included; a note of no words has no shingles
                                     and is never counted)
    near_dup_test_in_train_rate        ... as a share of n_test

and the same for val against train under `val_vs_train`, with "test" replaced by "val" in every key
(`val_vs_train.n_val`, `val_vs_train.exact_dup_val_in_train`, `val_vs_train.subject_overlap`, ...).
DVC flattens the file, so `dvc exp show` and `dvc metrics diff` list e.g. `subject_overlap` and
`val_vs_train.subject_overlap`. Rates are rounded to 6 decimals and are 0.0 when their denominator is 0.

`audit.fail_on` maps any of these keys (the `n_*` counts excepted) to the largest value allowed, or to
null for no check. By default any shared subject or any exact duplicate fails the stage with a
`LeakageError` naming what leaked and by how much; the metrics file is written first, so the numbers are
there to look at. `audit.enforce: false` turns the failure into a loud WARNING, for a deliberate demo:

    dvc repro audit
    dvc exp run -S data.split_by=note -S audit.enforce=false    # the original study's leaky note-level split
    dvc exp show                                                # leakage metrics and ROUGE jump side by side
    dvc metrics diff                                            # against the committed baseline
    dvc exp run -S audit.fail_on.near_dup_test_in_train=0       # also fail on any near-duplicate

The measuring is `notelm.privacy.audit.audit` (the leakage engine: exact, n-gram and near-duplicate matching,
and how it scales to MIMIC-III); this module is the stage around it: read the splits, write both files,
and gate on `audit.fail_on`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from notelm.config.audit import AuditParams
from notelm.config.names import LEAKAGE_COUNTS, VAL_BLOCK
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import iter_jsonl, write_json
from notelm.core.loader import load_section
from notelm.core.paths import LEAKAGE_DETAIL, LEAKAGE_METRICS, PREPARED_DIR, SPLITS, split_path
from notelm.privacy.audit import audit

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


class LeakageError(NoteLMError):
    """The audit found more leakage than `audit.fail_on` allows."""


# ---------------------------------------------------------------------------------------------
# The gate: `audit.fail_on` over the engine's metrics.


def _get(metrics: dict[str, Any], key: str) -> Any:
    """metrics[key], where "a.b" means metrics["a"]["b"]; None if absent."""
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check_thresholds(metrics: dict[str, Any], cfg: AuditParams) -> list[str]:
    """One message per `cfg.fail_on` limit that `metrics` exceed, naming the metric and by how much.

    A null limit, or a metric absent from `metrics` (val_vs_train.* when there was no val), checks nothing.
    """
    problems = []
    for key, limit in cfg.fail_on.items():
        value = _get(metrics, key)
        if limit is None or value is None or value <= limit:
            continue
        block, _, name = key.rpartition(".")
        split = "val" if block == VAL_BLOCK else "test"
        what = ""
        base = name.replace(split, "test").removesuffix("_rate")
        if base in LEAKAGE_COUNTS:
            total_key, counted = LEAKAGE_COUNTS[base]
            scope = _get(metrics, block) if block else metrics
            count, total = scope[name.removesuffix("_rate")], scope[total_key.replace("test", split)]
            share = f"{count / total:.1%}" if total else "0%"
            what = f": {count} of {total} {counted.format(thr=cfg.minhash_threshold)} ({share})"
            what = what.replace("test", split)
        elif name.endswith("_containment"):
            what = f": {value:.1%} of the distinct {split} word {cfg.ngram}-grams occur in train"
        problems.append(f"{key} = {value:g} > {limit:g} allowed{what}")
    return problems


def gate(metrics: dict[str, Any], cfg: AuditParams, problems: list[str]) -> dict[str, Any]:
    """The headline of the audit: the value of every metric `audit.fail_on` limits, and whether it passed."""
    out: dict[str, Any] = {}
    for key, limit in cfg.fail_on.items():
        if limit is not None and _get(metrics, key) is not None:
            block, _, name = key.rpartition(".")
            (out.setdefault(block, {}) if block else out)[name] = _get(metrics, key)
    out["gate"] = "pass" if not problems else "fail" if cfg.enforce else "fail (warned)"
    return out


@dataclass(frozen=True)
class Paths:
    """The audit stage's input and outputs."""

    prepared: str = PREPARED_DIR
    """Split directory (train, val and test)."""
    metrics: str = LEAKAGE_METRICS
    """The gate's numbers (what `dvc exp show` lists)."""
    detail: str = LEAKAGE_DETAIL
    """Every leakage metric."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The audit stage: measure leakage of the splits in `paths.prepared`, write `paths.detail` (every metric)
    and `paths.metrics` (the gate's numbers), then enforce `audit.fail_on`.

    Both files are written before any failure. Above a limit: LeakageError when `audit.enforce`,
    else a WARNING in the log. Returns the metrics.
    """
    cfg = load_section(AuditParams, params)
    splits = {split: split_path(split, paths.prepared) for split in SPLITS}
    missing = [str(p) for p in splits.values() if not p.is_file()]
    if missing:
        raise NoteLMError(f"audit: prepared split(s) not found: {', '.join(missing)}; run `dvc repro prepare` first")
    test = (row for row in iter_jsonl(splits["test"]) if row.get("scored", True))  # the notes whose scores count
    result = audit(iter_jsonl(splits["train"]), test, cfg, val_rows=iter_jsonl(splits["val"]))
    problems = check_thresholds(result, cfg)
    write_json(paths.detail, result)
    write_json(paths.metrics, gate(result, cfg, problems))
    log.info("audit: %s", ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, dict)))
    if not problems:
        return result
    listing = "\n".join(f"  - {p}" for p in problems)
    if cfg.enforce:
        raise LeakageError(
            f"leakage above audit.fail_on (all numbers in {paths.detail}):\n{listing}\n"
            "Split by patient (data.split_by=subject) to fix it, or raise or null the limit in audit.fail_on. "
            "To run a deliberately leaky experiment to the end: "
            "dvc exp run -S data.split_by=note -S audit.enforce=false"
        )
    log.warning("LEAKAGE above audit.fail_on, continuing because audit.enforce=false — scores on this test "
                "set are inflated:\n%s", listing)
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("audit", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
