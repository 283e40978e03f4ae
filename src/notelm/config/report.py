"""`report:` what reports/report.md shows (read by the report stage only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from notelm.core.loader import at_least


@dataclass(frozen=True)
class ReportParams:
    """`report:` what reports/report.md shows (stage report)."""

    section: ClassVar[str] = "report"

    n_examples_shown: int = 3
    """Completions shown side by side with their references (0 = none)."""
    max_chars: int = 300
    """Reference/completion text cut to this many characters."""
    prompt_tail_chars: int = 200
    """The prompt's last characters shown."""
    dpi: int = 100
    """PNG resolution."""

    def __post_init__(self) -> None:
        at_least(self, "report", 0, "n_examples_shown")
        at_least(self, "report", 1, "max_chars", "prompt_tail_chars", "dpi")
