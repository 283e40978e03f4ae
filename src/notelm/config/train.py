"""`train:` fine-tuning with the HF Trainer (read by the train stage, the memory plan and compare)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from notelm.config.models import Method, ModelRow
from notelm.core.loader import at_least, bad

# transformers.SchedulerType values that need no scheduler arguments (tests/config/test_config.py checks them there)
Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                    "inverse_sqrt"]


@dataclass(frozen=True)
class TrainParams:
    """`train:` fine-tuning with the HF Trainer (stage train)."""

    section: ClassVar[str] = "train"

    method: Method | None = None
    """null: the model row's method; or full | lora | qlora."""
    epochs: float = 1.0
    """Passes over the train blocks."""
    max_steps: int = -1
    """> 0 overrides epochs."""
    learning_rate: float = 3e-4
    """AdamW's peak learning rate."""
    lr_scheduler: Scheduler = "cosine"
    """transformers' learning-rate schedule (one of its SchedulerType names that need no extra arguments)."""
    warmup_ratio: float = 0.05
    """Share of the steps spent warming the learning rate up."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    batch_size: int = 8
    """Blocks per optimizer step on each process (before grad_accum)."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    max_length: int = 256
    """Tokens per training block (capped by the row's max_length)."""
    packing: bool = True
    """Concatenate notes into full blocks (no padding); false pads each note to max_length."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto (bf16 where supported) | bf16 | fp16 (CUDA) | fp32."""
    early_stopping_patience: int | None = None
    """Evaluations (epochs, or save_steps) without val-loss improvement before stopping."""
    save_steps: int | None = None
    """Checkpoint + evaluate every N steps (a killed run resumes from the last); null = each epoch."""
    logging_steps: int = 5
    """Optimizer steps between log lines (and dvclive points)."""
    seed: int = 42
    """Seeds initialisation, shuffling and dropout."""
    lora_r: int = 16
    """LoRA rank (lora and qlora)."""
    lora_alpha: int = 32
    """LoRA scale numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    loss_chunk_tokens: int | None = 512
    """Output layer + loss this many tokens at a time, never the full B×T×V logits (null: the model's own loss)."""
    compile: bool = False
    """torch.compile (inductor) each decoder layer in place before training; the loss and optimizer stay eager.
    Off by default: on this project's 2-core CPU the default train stage took longer compiled (README)."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in backward: less memory, ~1/3 more compute (null: qlora only)."""
    check_memory: bool = True
    """Refuse to start when the memory plan (`notelm plan`) says the run will not fit."""
    resume: Literal["auto", "never"] = "auto"
    """auto: continue this very run's last checkpoint (models/checkpoints/) if any; never: start afresh."""
    canaries: int = 0
    """Seeded random secrets (src/notelm/training/canaries.py) added to train notes, for the memorize stage's exposure test;
    as many never-inserted controls are drawn beside them. Train only: val, test and outputs never hold them."""
    canary_repeats: int = 1
    """Train notes each canary is added to (more repeats: more exposure, as in "The Secret Sharer")."""

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise bad("train", "epochs", "must be > 0 (or set train.max_steps)")
        at_least(self, "train", 1, "batch_size", "grad_accum", "max_length", "logging_steps", "lora_r",
                  "loss_chunk_tokens", "save_steps", "canary_repeats")
        at_least(self, "train", 0, "canaries")
        if not 0 < self.learning_rate < 1:
            raise bad("train", "learning_rate", f"must be in (0, 1), got {self.learning_rate}")

    def method_for(self, row: ModelRow) -> str:
        """The training method a run of `row` uses: train.method, else the row's default."""
        return self.method or row.method

    def checkpointing(self, method: str) -> bool:
        """Whether a run with `method` recomputes activations: train.gradient_checkpointing, else qlora only."""
        return self.gradient_checkpointing if self.gradient_checkpointing is not None else method == "qlora"

    def block_length(self, row: ModelRow) -> int:
        """Tokens per training block: train.max_length, capped by the model's context."""
        return min(self.max_length, row.max_length)
