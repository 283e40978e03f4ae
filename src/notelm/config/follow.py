"""`follow:` the chart-aware system's whole continuations (read by the follow stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from notelm.core.loader import at_least, bad


@dataclass(frozen=True)
class FollowParams:
    """`follow:` continuations that copy the chart while the fine-tuned model gives its tokens at least
    probability tau, else take the model's own token (stage follow; notelm.generation.follow)."""

    section: ClassVar[str] = "follow"

    taus: list[float] = field(default_factory=lambda: [0.02, 0.1, 0.3])
    """The probability floors tried on the validation notes; the one with the highest mean ROUGE-L there is used
    on test (the larger on a tie). 0 copies the chart wherever it has words; above 1 is the model alone."""
    tune_notes: int = 12
    """Validation notes tau is chosen on (the 2nd, 4th, ... of each patient: each has a chart); each costs a
    continuation per tau."""
    draft_words: int = 8
    """Words of the chart's aligned span offered as one draft."""
    limit: int | None = None
    """Continue only the first N scored test notes (null: all)."""

    def __post_init__(self) -> None:
        at_least(self, "follow", 1, "tune_notes", "draft_words", "limit")
        if not self.taus or any(not isinstance(t, int | float) or t < 0 for t in self.taus):
            raise bad("follow", "taus", f"expected a non-empty list of probabilities ≥ 0, got {self.taus!r}")
