"""Model loading and the HF `Trainer` glue of the train stage.

`load_for_training` loads the base checkpoint for a method (`full`, `lora`, or `qlora` on a 4-bit NF4 base);
`training_args` maps the train params to `TrainingArguments`; `make_trainer` builds a `Trainer` whose loss is
computed a chunk of tokens at a time (notelm.training.loss). After training, `whole_run_loss`, `write_loss_history`
(dvclive/ rewritten from the log history, without wall-clock figures), `gathered_state` and `save_final` (the
merged checkpoint written atomically) turn the Trainer's state into the stage's outputs.

Used by the train stage (notelm.stages.train), benchmarks/train.py and tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
from pathlib import Path
from typing import Any

from notelm.config.models import ModelRow
from notelm.config.train import TrainParams
from notelm.core.files import atomic_dir, atomic_open
from notelm.core.paths import SOURCE_RECORD, TRAIN_RECORD
from notelm.training import loss, weights
from notelm.training.blocks import collate_blocks

# Trainer log keys that are wall-clock figures: logged, but kept out of dvclive/ (a DVC output)
TIMING_KEYS = ("runtime", "samples_per_second", "steps_per_second")


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


def decoder_layers(model):
    """The transformer blocks of an HF causal LM (a plain model, not a peft wrapper): the decoder's longest
    `ModuleList` (`model.layers` in Llama-like families, `h` in GPT-2, `layers` in OPT)."""
    import torch

    lists = [m for m in model.get_decoder().children() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"train.compile: {type(model).__name__} has no list of decoder layers to compile; "
                         "set train.compile: false")
    return max(lists, key=len)


def compile_layers(model) -> int:
    """Compile every decoder layer of `model` (plain or peft) in place with torch.compile; return how many.

    Regional: the blocks share their code and shapes, so inductor compiles one graph and reuses it for each
    (compile time is one block's, not the whole model's); the hooks, the chunked loss and the peft wrappers
    around them stay eager, and the state dict keeps its keys (checkpoints and resume are unchanged)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = decoder_layers(inner)
    for layer in layers:
        layer.compile()
    return len(layers)


def load_for_training(row: ModelRow, method: str, model_dir: Path, cfg: TrainParams, precision: str):
    """Load the base checkpoint ready for `method`: all weights trainable, or LoRA (on a 4-bit base for qlora);
    its decoder layers compiled with `train.compile`."""
    model, tokenizer = _load_for_method(row, method, model_dir, cfg, precision)
    if cfg.compile:
        compile_layers(model)
    return model, tokenizer


def _load_for_method(row: ModelRow, method: str, model_dir: Path, cfg: TrainParams, precision: str):
    """load_for_training before compiling."""
    import torch

    checkpointing = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
    if method == "full":
        model, tokenizer = weights.load_checkpoint(model_dir, "float32", row.trust_remote_code)
        if cfg.checkpointing(method):
            model.gradient_checkpointing_enable(**checkpointing)
        model.train()
        return model, tokenizer
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    trust = row.trust_remote_code  # the current row's consent, never the checkpoint's
    tokenizer = weights.load_tokenizer(model_dir, trust_remote_code=trust)
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        compute = {"bf16": "bfloat16", "fp16": "float16"}.get(precision, "float32")
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=getattr(torch, compute))
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
        with buffers_returned_to_os():
            model = weights.load_causal_lm(model_dir, compute, trust_remote_code=trust, quantization_config=quant,
                                           device_map={"": device})
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=cfg.checkpointing(method), **checkpointing
            )
        # bitsandbytes repacks a 4-bit layer for its fast CPU kernel the first time the layer runs in
        # eval mode without grad (the Trainer's evaluation); that kernel has no backward, so training
        # after the first evaluation would silently stop updating every layer below the last.
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    else:
        model = weights.load_causal_lm(model_dir, "float32", trust_remote_code=trust)
        if cfg.checkpointing(method):
            model.gradient_checkpointing_enable(**checkpointing)
            model.enable_input_require_grads()  # the frozen embeddings' output must carry grad to the adapters
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(row.lora_targets), task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tokenizer


def make_trainer(model, args, loss_chunk_tokens: int | None, **kwargs):
    """A HF `Trainer` whose loss is computed `loss_chunk_tokens` tokens at a time (notelm.training.loss) where the
    model's family allows it, else by the model itself."""
    from transformers import Trainer

    kwargs.setdefault("data_collator", collate_blocks)

    class ChunkedLossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inner = self.accelerator.unwrap_model(model)
            if hasattr(inner, "get_base_model"):  # peft
                inner = inner.get_base_model()
            if not loss.supports(inner) or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # the same scaling as Trainer.compute_loss, so gradient accumulation and DDP see the same loss
            items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            value, outputs = loss.forward_with_chunked_loss(model, inner, inputs, loss_chunk_tokens, items)
            if self.args.average_tokens_across_devices and items is not None:
                value = value * (self.accelerator.num_processes // self.get_tp_size())
            return (value, outputs) if return_outputs else value

    cls = ChunkedLossTrainer if loss_chunk_tokens else Trainer
    return cls(model=model, args=args, **kwargs)


def is_timing(key: str) -> bool:
    """Whether a Trainer log key is a wall-clock figure (train_runtime, eval_samples_per_second, ...)."""
    return key.endswith(TIMING_KEYS)


def whole_run_loss(log_history: list[dict[str, Any]]) -> float | None:
    """Mean training loss per optimizer step over the whole run, from the logged interval losses (each the
    mean over the steps since the previous one; LogTrainLoss logs the last interval too). Unlike the
    Trainer's own `train_loss`, which averages only the steps this process ran, it is the same after a resume."""
    total, last = 0.0, 0
    for entry in log_history:
        if "loss" in entry:
            total += entry["loss"] * (entry["step"] - last)
            last = entry["step"]
    return total / last if last else None


def log_train_loss_callback():
    """A Trainer callback that also logs the training loss at the last step and before every evaluation, so
    the logged intervals cover every step (whole_run_loss), early stopping included."""
    from transformers import TrainerCallback

    class LogTrainLoss(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps or control.should_evaluate:
                control.should_log = True

        def on_epoch_end(self, args, state, control, **kwargs):
            if control.should_evaluate:
                control.should_log = True

    return LogTrainLoss()


def write_loss_history(live_dir: str | Path, log_history: list[dict[str, Any]]) -> None:
    """Rewrite `live_dir` from the Trainer's log history, one point per logged event at its training step,
    leaving out wall-clock figures and timestamps so that the same run writes the same files.

    The history is saved in every checkpoint and restored on resume, so a run killed and resumed gets
    its whole curves; a streaming callback (which DVC's clean-up of the stage outputs restarts) saw
    only the steps after the resume.
    """
    from dvclive.utils import standardize_metric_name

    from dvclive import Live

    params_file = Path(live_dir) / "params.yaml"  # the TrainingArguments the callback logged; Live clears it
    params = params_file.read_bytes() if params_file.is_file() else None
    with Live(str(live_dir), report=None, save_dvc_exp=False, dvcyaml=None) as live:
        for entry in log_history:
            live.step = int(entry["step"])
            for key, value in sorted(entry.items()):  # a resumed history comes back from JSON in sorted order
                if key != "step" and isinstance(value, (int, float)) and not is_timing(key):
                    live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value, timestamp=False)
    if params is not None:
        with atomic_open(params_file, "wb") as fh:
            fh.write(params)


def gathered_state(trainer) -> dict[str, Any] | None:
    """Under FSDP, the full state dict gathered from every process's shards (a collective: every process must
    call it; the main one gets the weights); None otherwise (each process holds the whole model)."""
    return trainer.accelerator.get_state_dict(trainer.model) if trainer.is_fsdp_enabled else None


def save_final(trainer, tokenizer, method: str, model_dir: Path, output_dir: Path, record: dict[str, Any],
               state: dict[str, Any] | None = None, trust_remote_code: bool = False) -> None:
    """Write the best model to `output_dir` atomically: merged HF checkpoint (+ `adapter/` for LoRA) and `record`.
    `state`: the gathered weights of an FSDP run (`gathered_state`); `trust_remote_code`: the row's consent, for
    reloading the base to merge LoRA into."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    with atomic_dir(output_dir) as tmp:
        if method == "full":
            model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        else:
            from peft import PeftModel

            model.save_pretrained(tmp / "adapter", state_dict=state, safe_serialization=True)
            base, _ = weights.load_checkpoint(model_dir, "float32", trust_remote_code)
            merged = PeftModel.from_pretrained(base, tmp / "adapter").merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / TRAIN_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if (model_dir / SOURCE_RECORD).is_file():  # the base's provenance and the packages it requires
            shutil.copyfile(model_dir / SOURCE_RECORD, tmp / SOURCE_RECORD)


def training_args(cfg: TrainParams, checkpoint_dir: Path, precision: str):
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
        optim="adamw_torch_fused",  # the Trainer's default, pinned: one kernel per step, CPU included
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
