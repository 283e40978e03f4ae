"""`generate:` batched decoding of the test prompts (read by the generate stage and the app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from notelm.core.loader import at_least


@dataclass(frozen=True)
class GenerateParams:
    """`generate:` batched decoding of the test prompts (stage generate; the app's decoding too)."""

    section: ClassVar[str] = "generate"

    max_new_tokens: int | Literal["auto"] = "auto"
    """auto: data.max_target_words × the most tokens one test-target word takes in the model's tokenizer × budget_margin; or a number."""
    budget_margin: float = 1.5
    """The auto budget's margin: decoding stops at the word cap, so a larger one costs time only for models that write longer words."""
    batch_size: int = 64
    """Large batches amortise reading the weights at every decoding step."""
    max_prompt_tokens: int = 384
    """Longer prompts keep their last tokens."""
    do_sample: bool = False
    """false: greedy; true: sample with temperature and top_p."""
    temperature: float = 1.0
    """Sampling temperature (with do_sample)."""
    top_p: float = 1.0
    """Nucleus sampling share (with do_sample)."""
    repetition_penalty: float = 1.0
    """transformers' repetition penalty (1.0: none)."""
    seed: int = 0
    """Seeds sampling."""
    limit: int | None = None
    """First N test examples only."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights' dtype while decoding (float32: deterministic, the default)."""
    compile: bool = False
    """torch.compile the decoding step over the static KV cache (one dynamic-shape graph for every batch and prompt
    width). Off by default: on this project's 2-core CPU it was slower than eager (benchmarks/generate.py)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, str):
            at_least(self, "generate", 1, "max_new_tokens")
        at_least(self, "generate", 1, "batch_size", "max_prompt_tokens", "limit", "budget_margin")
