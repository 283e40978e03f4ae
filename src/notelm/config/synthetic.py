"""`synthetic:` the knobs of the synthetic NOTEEVENTS corpus (read by the synthesize stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from notelm.core.loader import at_least, bad


@dataclass(frozen=True)
class SyntheticParams:
    """`synthetic:` the synthetic NOTEEVENTS corpus (stage synthesize)."""

    section: ClassVar[str] = "synthetic"

    seed: int = 0
    """One seed drives the whole corpus; same params -> byte-identical file."""
    patients: int = 74
    """Distinct SUBJECT_IDs: with data.ratios, 30 train, 22 val and 22 test patients."""
    admissions_per_patient: list[int] = field(default_factory=lambda: [1, 2])
    """[min, max] HADM_IDs per patient."""
    notes_per_admission: list[int] = field(default_factory=lambda: [3, 4])
    """[min, max] nursing notes per admission, one per shift (0700-1900 / 1900-0700)."""
    words_per_note: list[int] = field(default_factory=lambda: [80, 180])
    """[min, max] target words per nursing note (required content keeps a floor near 100)."""
    copy_forward: float = 0.3
    """Chance an unchanged system section is carried forward from the previous note."""
    variation: float = 0.8
    """Chance a fresh phrase is reworded, a narrative line added, an optional section skipped."""
    other_category_share: float = 0.15
    """Share of rows that are Physician / Radiology / ECG / Discharge summary."""
    error_rows: int = 5
    """Nursing rows flagged ISERROR=1 (prepare drops them)."""
    blank_rows: int = 2
    """Nursing rows with empty/whitespace TEXT (prepare drops them)."""

    def __post_init__(self) -> None:
        if not 1 <= self.patients <= 50_000:
            raise bad("synthetic", "patients", f"must be between 1 and 50000 (MIMIC-III has ~46k), got {self.patients}")
        for key, lowest in (("admissions_per_patient", 1), ("notes_per_admission", 1), ("words_per_note", 40)):
            pair = getattr(self, key)
            if len(pair) != 2 or not lowest <= pair[0] <= pair[1]:
                raise bad("synthetic", key, f"must be [min, max] with {lowest} <= min <= max, got {pair}")
        if self.patients * self.admissions_per_patient[-1] > 100_000:
            raise bad("synthetic", "patients", "patients x max admissions must fit the 100,000 MIMIC HADM_IDs")
        for key in ("copy_forward", "variation"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise bad("synthetic", key, f"must be between 0 and 1, got {getattr(self, key)}")
        if not 0.0 <= self.other_category_share <= 0.9:
            raise bad("synthetic", "other_category_share", f"must be between 0 and 0.9, got {self.other_category_share}")
        at_least(self, "synthetic", 0, "error_rows", "blank_rows")
        if self.error_rows > self.patients * self.admissions_per_patient[0] * self.notes_per_admission[0]:
            raise bad("synthetic", "error_rows", f"{self.error_rows} is more than the fewest nursing notes these params make")
