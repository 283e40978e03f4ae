"""`audit:` the leakage audit and its gate (read by the audit stage)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from notelm.config.names import VAL_BLOCK, leakage_metric_names
from notelm.core.loader import at_least, bad


def _default_fail_on() -> dict[str, float | None]:
    """Fail on a shared patient or an exact copy; the other metrics are listed unchecked (null)."""
    return {"subject_overlap": 0, "exact_dup_test_in_train": 0, "admission_overlap": None, "target_in_train": None,
            "near_dup_test_in_train": None, "ngram13_containment": None}


@dataclass(frozen=True)
class AuditParams:
    """`audit:` the leakage audit and its gate (stage audit)."""

    section: ClassVar[str] = "audit"

    ngram: int = 13
    """Word n-gram size of ngram<N>_containment (13 as in n-gram decontamination)."""
    shingle: int = 5
    """Word shingle size for MinHash near-duplicate detection."""
    num_perm: int = 128
    """MinHash permutations (more: sharper LSH, slower)."""
    minhash_threshold: float = 0.8
    """Shingle-set Jaccard at or above which a train note is a near-duplicate."""
    seed: int = 1
    """MinHash permutation seed."""
    enforce: bool = True
    """false: log a loud WARNING instead of failing when a limit below is exceeded."""
    fail_on: dict = field(default_factory=_default_fail_on)
    """Metric -> largest value allowed (null: not checked); val_vs_train.<key> works too. The metrics are the keys
    of metrics/leakage.json (names.LEAKAGE_COUNTS, their _rate, ngram<N>_containment)."""

    def __post_init__(self) -> None:
        for key, lowest in (("ngram", 1), ("shingle", 1), ("num_perm", 2), ("seed", 0)):
            at_least(self, "audit", lowest, key)
        if self.seed >= 2**32:
            raise bad("audit", "seed", f"must be < 2**32, got {self.seed}")
        if not 0.0 < self.minhash_threshold <= 1.0:
            raise bad("audit", "minhash_threshold", f"must be in (0, 1], got {self.minhash_threshold}")
        valid = leakage_metric_names(self.ngram)
        for key, limit in self.fail_on.items():
            if key not in valid:
                # A null entry left over from another audit.ngram (ngram13_containment: null) checks nothing.
                if limit is None and re.fullmatch(rf"({VAL_BLOCK}\.)?ngram\d+_containment", str(key)):
                    continue
                raise bad("audit", f"fail_on.{key}", f"unknown metric; valid metrics: {', '.join(valid)}")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 0):
                raise bad("audit", f"fail_on.{key}", f"must be a number >= 0 (the largest value allowed) or null, got {limit!r}")
