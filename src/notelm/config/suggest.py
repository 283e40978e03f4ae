"""`suggest:` the simulated nurse typing with word suggestions (read by the suggest stage; the app's suggestions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from notelm.core.loader import at_least, bad


@dataclass(frozen=True)
class SuggestParams:
    """`suggest:` completion as a nurse uses it: keystroke savings while typing (stage suggest)."""

    section: ClassVar[str] = "suggest"

    max_words: int = 5
    """Most words one suggestion proposes (accepted with one keystroke, in whole or in part)."""
    budget: int = 16
    """Most tokens decoded for one suggestion (a word cut short by it is not proposed)."""
    ngram_order: int = 3
    """The n-gram proposer's order: its context is the typed text's last (order − 1) words, backing off to fewer."""
    tune_notes: int = 24
    """Validation notes the chart-aware system's threshold is chosen on (those with a chart, the 2nd, 4th, ... of
    each patient, as test scores them): more choose it more surely and cost a forward each."""
    precision: str = "auto"
    """The chart-aware system's scoring forward: auto (bf16 where the CPU or GPU has it natively, else fp32), fp32
    or bf16. The models' own proposals are always decoded in fp32."""
    limit: int | None = None
    """Type only the first N scored test notes (null: all)."""
    bootstrap_samples: int = 10000
    """Patient-clustered resamples for the intervals and paired differences."""
    seed: int = 0
    """Seeds the bootstrap."""

    def __post_init__(self) -> None:
        at_least(self, "suggest", 1, "max_words", "budget", "limit", "bootstrap_samples")
        at_least(self, "suggest", 2, "ngram_order")
        at_least(self, "suggest", 0, "seed", "tune_notes")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise bad("suggest", "precision", f"expected auto, fp32 or bf16, got {self.precision!r}")
