"""`data:` reading, cleaning, splitting and cutting notes into prompt/target (read by the prepare stage; evaluate
reads `max_target_words`, report the data source)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from notelm.core.loader import at_least, bad
from notelm.core.paths import SYNTHETIC_NOTES


@dataclass(frozen=True)
class DataParams:
    """`data:` reading, cleaning, splitting and cutting notes into prompt/target (stage prepare)."""

    section: ClassVar[str] = "data"

    raw_path: str = SYNTHETIC_NOTES
    """MIMIC-III NOTEEVENTS.csv(.gz) or a MIMIC-IV-Note CSV (discharge.csv, radiology.csv); the schema is read from
    the header. The one input path in params.yaml (the other paths live in dvc.yaml)."""
    encoding: str = "utf-8"
    """The raw file's text encoding (cp1252 / latin-1 after a spreadsheet round-trip)."""
    max_malformed_share: float | None = 0.01
    """Fail when more rows than this share are malformed for one reason (a wrong encoding or a broken export);
    null: count and skip them all."""
    categories: list[str] = field(default_factory=lambda: ["Nursing", "Nursing/other"])
    """CATEGORY (MIMIC-IV: note_type) values kept, compared stripped; [] keeps all."""
    split_by: Literal["subject", "admission", "note"] = "subject"
    """Group of the split: subject | admission | note (note = the leaky random split of the original study)."""
    ratios: list[float] = field(default_factory=lambda: [0.4, 0.3, 0.3])
    """Train/val/test shares of the groups, by a seeded shuffle (enough test patients for an interval)."""
    fraction: float = 1.0
    """Train only: share in (0, 1] of train notes, or a whole count > 1 (e.g. 5000); val/test never change."""
    seed: int = 42
    """Seeds the split and the train subsample."""
    normalize_whitespace: bool = True
    """Collapse every whitespace run (newlines too) into one space."""
    deid: Literal["keep", "normalize", "remove"] = "normalize"
    """[**...**] placeholders: keep | normalize (to [**NAME**], [**DATE**], [**HOSPITAL**], ...) | remove."""
    min_chars: int = 50
    """Shortest cleaned note kept, in characters."""
    max_chars: int | None = 20000
    """Longest cleaned note kept, in characters (null: no upper bound)."""
    min_words: int = 10
    """Fewest words a cleaned note needs (at least 2: a prompt and a target need a word each)."""
    max_words: int | None = 1000
    """Most words a cleaned note may have (null: no upper bound)."""
    drop_duplicates: bool = True
    """Drop exact duplicates of the cleaned text, keeping the first in file order."""
    prompt_fraction: float = 0.5
    """Prompt = this share of the note's words, cut at a word boundary."""
    max_target_words: int | None = 48
    """Target = the words after the prompt, at most this many (null = the whole rest)."""
    history: int = 0
    """The patient's most recent earlier notes of the same split put before each prompt (0 to 5)."""
    history_words: int = 200
    """The history is cut to its last this many words."""
    test_scored: Literal["alternate", "all"] = "alternate"
    """alternate: a test patient's 2nd, 4th, ... notes are scored, the others are their context; all: every one."""
    leak_test_patients: float = 0.0
    """Share of test patients whose context notes also go into train: a deliberate leak (test.jsonl unchanged)."""
    rejects_sample: int = 100
    """Malformed rows written to rejects.jsonl, per reason (all are counted)."""
    redundancy_pairs: int = 2000
    """Consecutive-note pairs sampled for the redundancy metric (ROUGE of a note against the one before)."""

    def __post_init__(self) -> None:
        self._check_split()
        self._check_lengths()
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise bad("data", "encoding", f"{self.encoding!r} is not a text encoding Python knows (e.g. utf-8, "
                                          "cp1252, latin-1)") from None
        if self.max_malformed_share is not None and not 0 <= self.max_malformed_share <= 1:
            raise bad("data", "max_malformed_share", f"expected a share in [0, 1] or null, got {self.max_malformed_share}")
        if not 0.0 <= self.leak_test_patients <= 1.0:
            raise bad("data", "leak_test_patients", f"expected a share between 0 and 1, got {self.leak_test_patients}")
        if self.leak_test_patients and self.test_scored == "all":
            raise bad("data", "leak_test_patients", "leaks the test patients' context notes, and data.test_scored: all "
                      "leaves none; set data.test_scored: alternate")

    def _check_split(self) -> None:
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise bad("data", "ratios", f"expected three non-negative shares [train, val, test] summing to 1, got {self.ratios}")
        if self.ratios[0] <= 0:
            raise bad("data", "ratios", "the train share must be positive")
        if not self.fraction > 0 or (self.fraction > 1 and not float(self.fraction).is_integer()):
            raise bad("data", "fraction", f"expected a share in (0, 1] or a whole number of train notes > 1, got {self.fraction}")

    def _check_lengths(self) -> None:
        if not 0 < self.prompt_fraction < 1:
            raise bad("data", "prompt_fraction", f"expected a number strictly between 0 and 1, got {self.prompt_fraction}")
        at_least(self, "data", 1, "max_target_words")
        if self.min_words < 2:
            raise bad("data", "min_words", f"a note needs at least 2 words to give a prompt and a target, got {self.min_words}")
        if self.max_words is not None and self.max_words < self.min_words:
            raise bad("data", "max_words", f"{self.max_words} is below data.min_words ({self.min_words})")
        at_least(self, "data", 0, "min_chars", "rejects_sample")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise bad("data", "max_chars", f"{self.max_chars} is below data.min_chars ({self.min_chars})")
        if not 0 <= self.history <= 5:
            raise bad("data", "history", f"expected 0 to 5 earlier notes, got {self.history}")
        at_least(self, "data", 1, "history_words", "redundancy_pairs")
