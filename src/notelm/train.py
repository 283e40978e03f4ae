"""The `train` stage: fine-tune the base model on the training notes with the HF `Trainer`.

Each training text is a whole example (`prompt + " " + target` + EOS). With `train.packing`
the tokenised texts are concatenated and cut into `max_length` blocks, so no compute goes to
padding; without it each text is padded to `max_length` (the original study's way).

Methods: `full` (every weight trains), `lora` (peft adapters on `lora_targets`), `qlora`
(the base loaded 4-bit NF4 through bitsandbytes, then LoRA). LoRA runs save the adapter under
`models/finetuned/adapter/` and a merged checkpoint at `models/finetuned/`, so generate loads
every method the same way, with `AutoModelForCausalLM.from_pretrained` alone.

The loss curves go to `dvclive/` (train loss per logging step, val loss per epoch), which
`dvc plots show` draws. Checkpoints go to `models/checkpoints/` (persistent across runs), each
epoch or every `train.save_steps` steps: a run killed mid-way (even by SIGKILL) resumes from its
last complete checkpoint the next time the stage runs with the same params, data, base weights,
training code and library versions (see `fingerprint`), and starts
afresh otherwise; `models/finetuned/` is only ever replaced whole, at the end.

The loss is computed `train.loss_chunk_tokens` tokens at a time (src/notelm/loss.py), so the
batch × length × vocabulary logits are never built whole; null keeps the model's own loss.

Before loading anything, the memory plan (src/notelm/plan.py) refuses a run that would not fit,
naming what would. Under `accelerate launch --num_processes N` the same code runs data-parallel
(DDP; gloo on CPU) and only the main process writes files.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from notelm import plan
from notelm.config import NoteLMError, ParamsError, load_section
from notelm.io import atomic_dir, atomic_open, read_jsonl, write_json
from notelm.models import METHODS, ModelSpec, base_dir, load_checkpoint, model_spec, prepare_tokenizer

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
FINGERPRINT = "notelm_run.json"


@dataclass(frozen=True)
class TrainConfig:
    """The `train:` section of params.yaml."""

    method: str | None = None  # None: the model row's default method
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs (quick runs and tests)
    learning_rate: float = 3e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    max_length: int = 256
    packing: bool = True
    precision: str = "auto"
    early_stopping_patience: int | None = None
    save_steps: int | None = None  # checkpoint (and evaluate) every N steps; None: each epoch
    logging_steps: int = 5
    seed: int = 42
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    loss_chunk_tokens: int | None = 512  # tokens per chunk of the output layer + loss (notelm.loss); None: the model's own
    check_memory: bool = True  # refuse a run the memory plan says will not fit
    data_dir: str = "data/prepared"
    output_dir: str = "models/finetuned"
    checkpoint_dir: str = "models/checkpoints"
    live_dir: str = "dvclive"

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ParamsError:
            return ParamsError(f"params.yaml: train.{key}: {why}")

        if self.method is not None and self.method not in METHODS:
            raise bad("method", f"{self.method!r} is not one of {', '.join(METHODS)} (or null for the model's default)")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"{self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise bad("epochs", "must be > 0 (or set train.max_steps)")
        for key in ("batch_size", "grad_accum", "max_length", "logging_steps", "lora_r"):
            if getattr(self, key) < 1:
                raise bad(key, f"must be >= 1, got {getattr(self, key)}")
        if self.loss_chunk_tokens is not None and self.loss_chunk_tokens < 1:
            raise bad("loss_chunk_tokens", f"must be >= 1 or null (the model's own loss), got {self.loss_chunk_tokens}")
        if self.save_steps is not None and self.save_steps < 1:
            raise bad("save_steps", f"must be >= 1 or null (each epoch), got {self.save_steps}")
        if not 0 < self.learning_rate < 1:
            raise bad("learning_rate", f"must be in (0, 1), got {self.learning_rate}")


def resolve_precision(precision: str) -> str:
    """`auto` → bf16 where the GPU or CPU supports it natively, else fp32."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return "bf16"
    return "fp32"


def training_texts(rows: list[dict[str, Any]], eos: str) -> list[str]:
    """One training text per example: the note (`prompt + " " + target`) followed by EOS."""
    return [f"{r['prompt']} {r['target']}".strip() + eos for r in rows]


def tokenize_examples(texts: list[str], tokenizer, max_length: int, packing: bool) -> dict[str, list[list[int]]]:
    """Token blocks for causal-LM training.

    packing=True: all texts concatenated and cut into full `max_length` blocks (the tail that
    does not fill a block is dropped; a corpus shorter than one block yields one short block).
    packing=False: each text truncated and right-padded to `max_length`; padding is not scored.
    """
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    if packing:
        flat = [t for seq in ids for t in seq]
        n = max(1, len(flat) // max_length)
        blocks = [flat[i * max_length : (i + 1) * max_length] for i in range(n)]
        return {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks], "labels": [list(b) for b in blocks]}
    pad = tokenizer.pad_token_id
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for seq in ids:
        seq = seq[:max_length]
        fill = max_length - len(seq)
        out["input_ids"].append(seq + [pad] * fill)
        out["attention_mask"].append([1] * len(seq) + [0] * fill)
        out["labels"].append(seq + [-100] * fill)
    return out


def build_dataset(path: Path, tokenizer, max_length: int, packing: bool):
    """A `datasets.Dataset` of token blocks from a prepared JSONL split."""
    from datasets import Dataset

    if not path.is_file():
        raise NoteLMError(f"{path}: prepared split not found; run `dvc repro prepare` first")
    rows = read_jsonl(path)
    if not rows:
        raise NoteLMError(f"{path}: no examples; check data.* filters and data.fraction")
    texts = training_texts(rows, tokenizer.eos_token or "")
    return Dataset.from_dict(tokenize_examples(texts, tokenizer, max_length, packing))


# the code that shapes the trained weights: a change to it must not resume an older run's checkpoint
TRAINING_CODE = ("train.py", "loss.py", "models.py")
TRAINING_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


def fingerprint(cfg: TrainConfig, spec: ModelSpec, data_dir: Path, model_dir: Path | None = None) -> str:
    """Hash of everything a checkpoint depends on — params, model row, data, base weights, training
    code and library versions — so resume only ever continues the very same run."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    libraries = {name: installed(name) for name in TRAINING_LIBRARIES}
    digest = hashlib.sha256(json.dumps([asdict(cfg), asdict(spec), libraries], sort_keys=True).encode())
    files = [data_dir / "train.jsonl", data_dir / "val.jsonl"]
    files += [Path(__file__).with_name(name) for name in TRAINING_CODE]
    if model_dir is not None:
        files += sorted(f for f in Path(model_dir).rglob("*") if f.is_file())
    for path in files:
        digest.update(str(path.name).encode())
        with path.open("rb") as fh:
            while block := fh.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()


def last_checkpoint(checkpoint_dir: Path, run_id: str, clean: bool = True) -> str | None:
    """The newest complete checkpoint of this run, or None.

    A checkpoint is complete once the Trainer has written its `trainer_state.json`, the last file
    it saves; one cut short by a kill is ignored. With `clean` (the main process), checkpoints of
    other runs and incomplete ones are removed.
    """
    if not checkpoint_dir.is_dir():
        return None
    marker = checkpoint_dir / FINGERPRINT
    if not marker.is_file() or json.loads(marker.read_text()).get("run_id") != run_id:
        if clean:
            shutil.rmtree(checkpoint_dir)
        return None
    complete = []
    for path in checkpoint_dir.glob("checkpoint-*"):
        try:
            complete.append((json.loads((path / "trainer_state.json").read_text())["global_step"], path))
        except (OSError, ValueError, KeyError):
            if clean:
                shutil.rmtree(path, ignore_errors=True)
    return str(max(complete)[1]) if complete else None


@contextlib.contextmanager
def buffers_returned_to_os():
    """While inside, every allocation of 128 KiB or more gets its own mapping (glibc), so the
    conversion buffers of a 4-bit load go back to the OS instead of staying as holes in the heap that
    training cannot fully reuse (measured: ~0.4 GB of peak RSS for SmolLM2-135M QLoRA). On leaving,
    the threshold is set to 32 MiB, the ceiling glibc's own adaptive threshold reaches in training.
    A no-op where the C library has no `mallopt` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    m_mmap_threshold = -3
    mallopt(m_mmap_threshold, 128 * 1024)
    try:
        yield
    finally:
        mallopt(m_mmap_threshold, 32 * 1024 * 1024)


def load_for_training(spec: ModelSpec, method: str, model_dir: Path, cfg: TrainConfig, precision: str):
    """Load the base checkpoint ready for `method`: all weights trainable, or LoRA (on a 4-bit base for qlora)."""
    import torch
    from transformers import AutoModelForCausalLM

    if method == "full":
        model, tokenizer = load_checkpoint(model_dir, "float32")
        model.train()
        return model, tokenizer
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(model_dir))
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        compute = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
        with buffers_returned_to_os():
            model = AutoModelForCausalLM.from_pretrained(
                model_dir, quantization_config=quant, dtype=compute, device_map={"": device}
            )
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        # bitsandbytes repacks a 4-bit layer for its fast CPU kernel the first time the layer runs in
        # eval mode without grad (the Trainer's evaluation); that kernel has no backward, so training
        # after the first evaluation would silently stop updating every layer below the last.
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(spec.lora_targets), task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    return model, tokenizer


def make_trainer(model, args, loss_chunk_tokens: int | None, **kwargs):
    """A HF `Trainer` whose loss is computed `loss_chunk_tokens` tokens at a time (notelm.loss) where the
    model's family allows it, else by the model itself."""
    from transformers import Trainer

    from notelm import loss as chunked

    class ChunkedLossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inner = self.accelerator.unwrap_model(model)
            if hasattr(inner, "get_base_model"):  # peft
                inner = inner.get_base_model()
            if not chunked.supports(inner) or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # the same scaling as Trainer.compute_loss, so gradient accumulation and DDP see the same loss
            items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            loss, outputs = chunked.forward_with_chunked_loss(model, inner, inputs, loss_chunk_tokens, items)
            if self.args.average_tokens_across_devices and items is not None:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            return (loss, outputs) if return_outputs else loss

    cls = ChunkedLossTrainer if loss_chunk_tokens else Trainer
    return cls(model=model, args=args, **kwargs)


def write_loss_history(live_dir: str, log_history: list[dict[str, Any]]) -> None:
    """Rewrite `live_dir` from the Trainer's log history, one point per logged event at its training step.

    The history is saved in every checkpoint and restored on resume, so a run killed and resumed gets
    its whole curves; the streaming callback (which DVC's clean-up of the stage outputs restarts) saw
    only the steps after the resume.
    """
    from dvclive import Live
    from dvclive.utils import standardize_metric_name

    params_file = Path(live_dir) / "params.yaml"  # the TrainingArguments the callback logged; Live clears it
    params = params_file.read_bytes() if params_file.is_file() else None
    with Live(live_dir, report=None, save_dvc_exp=False, dvcyaml=None) as live:
        for entry in log_history:
            live.step = int(entry["step"])
            for key, value in entry.items():
                if key != "step" and isinstance(value, (int, float)):
                    live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value)
    if params is not None:
        with atomic_open(params_file, "wb") as fh:
            fh.write(params)


def save_final(trainer, tokenizer, method: str, model_dir: Path, output_dir: Path, summary: dict[str, Any]) -> None:
    """Write the best model to `output_dir` atomically: merged HF checkpoint (+ `adapter/` for LoRA)."""
    with atomic_dir(output_dir) as tmp:
        if method == "full":
            trainer.model.save_pretrained(tmp, safe_serialization=True)
        else:
            from peft import PeftModel

            trainer.model.save_pretrained(tmp / "adapter", safe_serialization=True)
            base, _ = load_checkpoint(model_dir, "float32")
            merged = PeftModel.from_pretrained(base, tmp / "adapter").merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "notelm_train.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def train(cfg: TrainConfig, spec: ModelSpec, model_dir: Path) -> dict[str, Any]:
    """Fine-tune `model_dir` with `cfg`; write the best checkpoint (by val loss) to `cfg.output_dir`.

    Returns a summary: method, precision, steps, train/val token counts, best val loss, seconds.
    """
    import torch
    from dvclive import Live
    from transformers import EarlyStoppingCallback, set_seed
    from transformers.integrations import DVCLiveCallback

    start = time.time()
    set_seed(cfg.seed)
    method = cfg.method or spec.method
    precision = resolve_precision(cfg.precision)
    if precision == "fp16" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
    max_length = min(cfg.max_length, spec.max_length)
    if cfg.check_memory and (need := plan.check(spec, model_dir, cfg, method, precision == "bf16")):
        log.info("train: memory plan ~%.1f GB of %.1f GB %s", need["estimate_gb"], need["available_gb"], need["where"])
    data_dir = Path(cfg.data_dir)
    model, tokenizer = load_for_training(spec, method, model_dir, cfg, precision)
    train_ds = build_dataset(data_dir / "train.jsonl", tokenizer, max_length, cfg.packing)
    val_ds = build_dataset(data_dir / "val.jsonl", tokenizer, max_length, cfg.packing)

    checkpoint_dir = Path(cfg.checkpoint_dir)
    run_id = fingerprint(cfg, spec, data_dir, model_dir)
    args = _training_args(cfg, checkpoint_dir, precision)
    main = args.should_save  # the one process (of an `accelerate launch`) that writes files
    with args.main_process_first(desc="checkpoint lookup"):
        resume = last_checkpoint(checkpoint_dir, run_id, clean=main)
        if main:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            write_json(checkpoint_dir / FINGERPRINT, {"run_id": run_id})
    log.info("train: %s method=%s precision=%s packing=%s loss_chunk_tokens=%s blocks train=%d val=%d x %d tokens%s",
             spec.name, method, precision, cfg.packing, cfg.loss_chunk_tokens, len(train_ds), len(val_ds), max_length,
             f" (resuming from {resume})" if resume else "")

    # dvcyaml=None: dvclive must never rewrite dvc.yaml (the train stage declares its outputs)
    live = Live(cfg.live_dir, report=None, save_dvc_exp=False, dvcyaml=None) if main else None
    callbacks = [DVCLiveCallback(live=live)]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = make_trainer(
        model, args, cfg.loss_chunk_tokens, train_dataset=train_ds, eval_dataset=val_ds,
        processing_class=tokenizer, callbacks=callbacks,
    )
    result = trainer.train(resume_from_checkpoint=resume)
    best = trainer.state.best_metric
    summary = {
        "model": spec.name,
        "method": method,
        "precision": precision,
        "packing": cfg.packing,
        "max_length": max_length,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_blocks": len(train_ds),
        "train_loss": result.training_loss,
        "best_val_loss": best,
        "best_val_perplexity": math.exp(best) if best is not None and best < 50 else None,
        "seconds": round(time.time() - start, 1),
        "resumed_from": resume,
        "processes": args.world_size,
    }
    if not main:
        return summary
    write_loss_history(cfg.live_dir, trainer.state.log_history)
    save_final(trainer, tokenizer, method, model_dir, Path(cfg.output_dir), summary)
    log.info("train: done in %.0fs, %d steps, best val loss %.4f -> %s", summary["seconds"], summary["steps"],
             best if best is not None else float("nan"), cfg.output_dir)
    return summary


def _training_args(cfg: TrainConfig, checkpoint_dir: Path, precision: str):
    """The TrainingArguments of a run: eval + save each epoch (or every save_steps), keep the best by val loss."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a share of the total steps
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_grad_norm=cfg.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        eval_strategy="steps" if cfg.save_steps else "epoch",
        save_strategy="steps" if cfg.save_steps else "epoch",
        eval_steps=cfg.save_steps,
        save_steps=cfg.save_steps or 500,  # 500 is the Trainer's default, unused per epoch
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        prediction_loss_only=True,  # evaluation needs the val loss only; never gather logits
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )


def run(params: dict[str, Any]) -> dict[str, Any]:
    """The `train` stage: fine-tune the selected model row with the `train:` params."""
    cfg = load_section(TrainConfig, params, "train")
    spec = model_spec(params)
    return train(cfg, spec, base_dir(params))
