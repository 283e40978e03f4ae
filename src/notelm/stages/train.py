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
training code and library versions (see `fingerprint`; `train.resume: never` always starts afresh),
and the log says why it resumes, starts fresh, or discards an older run's checkpoints;
`models/finetuned/` is only ever replaced whole, at the end.

The loss is computed `train.loss_chunk_tokens` tokens at a time (src/notelm/loss.py), so the
batch × length × vocabulary logits are never built whole; null keeps the model's own loss.

Before loading anything, the memory plan (src/notelm/plan.py) refuses a run that would not fit,
naming what would. Under `accelerate launch --num_processes N` the same code runs data-parallel
(DDP; gloo on CPU) and only the main process writes files.

    python -m notelm.stages.train --model-dir models/base/smollm2-135m --data data/prepared \
        --out models/finetuned --live dvclive --checkpoints models/checkpoints

Wall-clock figures (training seconds, samples per second) go to the log and logs/train.json, never into
models/finetuned/ or dvclive/, so the same run gives byte-identical DVC outputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from notelm import loss, plan, runner, weights
from notelm.artifacts import (
    BLOCKS_CACHE,
    CHECKPOINTS,
    FINETUNED,
    LIVE_DIR,
    PREPARED_DIR,
    SOURCE_RECORD,
    TRAIN_RECORD,
    atomic_dir,
    atomic_open,
    base_model_dir,
    split_path,
    write_json,
    write_timing,
)
from notelm.errors import NoteLMError, ParamsError
from notelm.params import ModelRow, TrainParams, load_section, model_row

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`

FINGERPRINT = "notelm_run.json"
# Trainer log keys that are wall-clock figures: logged, but kept out of dvclive/ (a DVC output)
TIMING_KEYS = ("runtime", "samples_per_second", "steps_per_second")


def training_text(row: dict[str, Any], eos: str) -> str:
    """The training text of an example: the note (`prompt + " " + target`) followed by EOS."""
    return f"{row['prompt']} {row['target']}".strip() + eos


def blocks(texts: Iterable[str], tokenizer, max_length: int, packing: bool,
           batch: int = 1000) -> Iterator[dict[str, list[int]]]:
    """Token blocks for causal-LM training, {input_ids, attention_mask} each, tokenising `batch` texts at a time
    so memory does not grow with the corpus.

    packing=True: all texts concatenated and cut into full `max_length` blocks (the tail that does not fill a
    block is dropped; a corpus shorter than one block yields one short block).
    packing=False: each text truncated and right-padded to `max_length`; the mask marks the padding, which
    `collate_blocks` leaves unscored.
    """
    pad, carry, emitted = tokenizer.pad_token_id, [], False
    texts = iter(texts)
    while chunk := list(itertools.islice(texts, batch)):
        for seq in tokenizer(chunk, add_special_tokens=True)["input_ids"]:
            if not packing:
                seq = seq[:max_length]
                fill = max_length - len(seq)
                yield {"input_ids": seq + [pad] * fill, "attention_mask": [1] * len(seq) + [0] * fill}
                continue
            carry.extend(seq)
            while len(carry) >= max_length:
                yield {"input_ids": carry[:max_length], "attention_mask": [1] * max_length}
                carry, emitted = carry[max_length:], True
    if packing and not emitted and carry:
        yield {"input_ids": carry, "attention_mask": [1] * len(carry)}


def collate_blocks(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of equal-length blocks as tensors, with labels = input_ids where the mask is 1, else -100
    (labels are made here rather than stored: the dataset holds every token once)."""
    import torch

    ids = torch.tensor([f["input_ids"] for f in features])  # B × T
    mask = torch.tensor([f["attention_mask"] for f in features])  # B × T
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def end_marker(tokenizer) -> str:
    """What ends a training note: the EOS token, unless the tokenizer already ends every text with it (a BERT-style
    tokenizer appends [SEP], which prepare_tokenizer makes its EOS)."""
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return "" if ids and ids[-1] == tokenizer.eos_token_id else tokenizer.eos_token or ""


def _split_blocks(path: str, tokenizer, max_length: int, packing: bool):
    """The generator `build_dataset` hands to `datasets`."""
    eos = end_marker(tokenizer)
    with open(path, encoding="utf-8") as fh:
        yield from blocks((training_text(json.loads(line), eos) for line in fh if line.strip()), tokenizer,
                          max_length, packing)


def build_dataset(path: Path, tokenizer, max_length: int, packing: bool, cache_dir: str | Path = BLOCKS_CACHE):
    """A memory-mapped `datasets.Dataset` of token blocks from a prepared JSONL split, written as a stream (peak
    memory does not grow with the split) into `cache_dir` and reused while the split's bytes, the tokenizer, the
    block settings and the training code are all unchanged (an explicit fingerprint: `datasets` would otherwise
    hash the generator by name only when this module is imported)."""
    from datasets import Dataset, Features, List, Value
    from datasets.fingerprint import Hasher

    empty = NoteLMError(f"{path}: no examples; check data.* filters and data.fraction, then `dvc repro prepare`")
    if not path.is_file():
        raise NoteLMError(f"{path}: prepared split not found; run `dvc repro prepare` first")
    with path.open(encoding="utf-8") as fh:  # stops at the first example; reads on only through blank lines
        if not any(line.strip() for line in fh):
            raise empty
    key = [_hash_files([path]), _hash_files(list(TRAINING_CODE)), Hasher.hash(tokenizer), max_length, packing]
    features = Features({"input_ids": List(Value("int32")), "attention_mask": List(Value("int8"))})
    dataset = Dataset.from_generator(_split_blocks, features=features, cache_dir=str(cache_dir),
                                     fingerprint=Hasher.hash(key),
                                     gen_kwargs={"path": str(path), "tokenizer": tokenizer, "max_length": max_length,
                                                 "packing": packing})
    return dataset


# what shapes the trained weights: a change to any of it must not resume an older run's checkpoint
TRAINING_CODE = (Path(__file__), Path(loss.__file__), Path(weights.__file__))
TRAINING_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")
NOT_SHAPING = ("resume", "check_memory")  # train params that do not change the weights


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while block := fh.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()[:16]


def fingerprint(cfg: TrainParams, row: ModelRow, data_dir: Path, model_dir: Path | None = None) -> dict[str, Any]:
    """What a checkpoint depends on, part by part — params, model row, data, base weights, training code,
    library versions — and `run_id`, the hash of them all: resume only ever continues the very same run."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    params = {k: v for k, v in asdict(cfg).items() if k not in NOT_SHAPING}
    parts = {
        "params": hashlib.sha256(json.dumps([params, asdict(row)], sort_keys=True).encode()).hexdigest()[:16],
        "data": _hash_files([split_path("train", data_dir), split_path("val", data_dir)]),
        "base weights": _hash_files(sorted(f for f in Path(model_dir).rglob("*") if f.is_file())) if model_dir else None,
        "training code": _hash_files(list(TRAINING_CODE)),
        "libraries": json.dumps({name: installed(name) for name in TRAINING_LIBRARIES}, sort_keys=True),
    }
    return {"run_id": hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), "parts": parts}


def _complete_checkpoints(checkpoint_dir: Path, clean: bool) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint the Trainer finished (its trainer_state.json is the last file it writes);
    with `clean`, ones cut short by a kill are removed."""
    complete = []
    for path in checkpoint_dir.glob("checkpoint-*"):
        try:
            complete.append((json.loads((path / "trainer_state.json").read_text())["global_step"], path))
        except (OSError, ValueError, KeyError):
            if clean:
                shutil.rmtree(path, ignore_errors=True)
    return sorted(complete)


def resume_point(checkpoint_dir: Path, run: dict[str, Any], resume: str, clean: bool = True) -> tuple[str | None, str]:
    """(the newest complete checkpoint of this very run or None, why): the reason is logged as it is.

    Checkpoints of another run (any part of the fingerprint changed) or, with `resume` = never, of any run
    are discarded when `clean` (the main process), and the reason names what changed.
    """
    if not checkpoint_dir.is_dir() or not any(checkpoint_dir.iterdir()):
        return None, "no checkpoint in {dir}: starting fresh".format(dir=checkpoint_dir)
    marker = checkpoint_dir / FINGERPRINT
    old = json.loads(marker.read_text()) if marker.is_file() else {}
    if resume == "never":
        why = "train.resume=never: discarding the checkpoints in {dir} and starting fresh"
    elif old.get("run_id") != run["run_id"]:
        changed = [k for k, v in run["parts"].items() if (old.get("parts") or {}).get(k) != v] or ["unknown"]
        why = "discarding the checkpoints in {dir} of an earlier run (changed: " + ", ".join(changed) + "); starting fresh"
    else:
        complete = _complete_checkpoints(checkpoint_dir, clean)
        if complete:
            step, path = complete[-1]
            return str(path), f"resuming this very run from {path} (step {step})"
        return None, f"no complete checkpoint of this run in {checkpoint_dir}: starting fresh"
    if clean:
        shutil.rmtree(checkpoint_dir)
    return None, why.format(dir=checkpoint_dir)


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


def load_for_training(row: ModelRow, method: str, model_dir: Path, cfg: TrainParams, precision: str):
    """Load the base checkpoint ready for `method`: all weights trainable, or LoRA (on a 4-bit base for qlora)."""
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
    """A HF `Trainer` whose loss is computed `loss_chunk_tokens` tokens at a time (notelm.loss) where the
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


def _setup(cfg: TrainParams, row: ModelRow, model_dir: Path, data_dir: Path):
    """Everything before the Trainer runs: the memory check, the model, the token blocks. Returns
    (method, precision, block length, model, tokenizer, train dataset, val dataset)."""
    import torch

    method, precision, length = cfg.method_for(row), plan.resolve_precision(cfg.precision), cfg.block_length(row)
    if precision == "fp16" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
    if cfg.check_memory and (need := plan.check(row, model_dir, cfg, precision == "bf16")):
        log.info("train: memory plan ~%.1f GB of %.1f GB %s", need["estimate_gb"], need["available_gb"], need["where"])
    model, tokenizer = load_for_training(row, method, model_dir, cfg, precision)
    train_ds = build_dataset(split_path("train", data_dir), tokenizer, length, cfg.packing)
    val_ds = build_dataset(split_path("val", data_dir), tokenizer, length, cfg.packing)
    return method, precision, length, model, tokenizer, train_ds, val_ds


def train(cfg: TrainParams, row: ModelRow, model_dir: Path, data_dir: Path = Path(PREPARED_DIR),
          output_dir: Path = Path(FINETUNED), live_dir: Path = Path(LIVE_DIR),
          checkpoint_dir: Path = Path(CHECKPOINTS)) -> dict[str, Any]:
    """Fine-tune `model_dir` on the splits in `data_dir`; write the best checkpoint (by val loss) to `output_dir`
    and the loss curves to `live_dir`. Returns the training record (no wall-clock figures: see logs/train.json)."""
    from transformers import EarlyStoppingCallback, set_seed
    from transformers.integrations import DVCLiveCallback

    from dvclive import Live

    start = time.perf_counter()
    set_seed(cfg.seed)
    method, precision, length, model, tokenizer, train_ds, val_ds = _setup(cfg, row, model_dir, data_dir)
    args = _training_args(cfg, checkpoint_dir, precision)
    main = args.should_save  # the one process (of an `accelerate launch`) that writes files
    with args.main_process_first(desc="checkpoint lookup"):
        run = fingerprint(cfg, row, data_dir, model_dir)
        resume, why = resume_point(checkpoint_dir, run, cfg.resume, clean=main)
        if main:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            write_json(checkpoint_dir / FINGERPRINT, run)
    log.info("train: %s", why)
    log.info("train: %s method=%s precision=%s packing=%s loss_chunk_tokens=%s blocks train=%d val=%d x %d tokens",
             row.name, method, precision, cfg.packing, cfg.loss_chunk_tokens, len(train_ds), len(val_ds), length)
    # live curves while training (dvcyaml=None: dvclive never rewrites dvc.yaml); rewritten whole at the end
    callbacks = [DVCLiveCallback(live=Live(str(live_dir), report=None, save_dvc_exp=False, dvcyaml=None) if main else None),
                 log_train_loss_callback()]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = make_trainer(model, args, cfg.loss_chunk_tokens, train_dataset=train_ds, eval_dataset=val_ds,
                           processing_class=tokenizer, callbacks=callbacks)
    result = trainer.train(resume_from_checkpoint=resume)
    best = trainer.state.best_metric
    train_loss = whole_run_loss(trainer.state.log_history)
    for entry in trainer.state.log_history:  # the Trainer's summary counts only the steps since the resume
        if "train_loss" in entry:
            entry["train_loss"] = train_loss
    record = {
        "model": row.name, "method": method, "precision": precision, "packing": cfg.packing, "max_length": length,
        "steps": trainer.state.global_step, "epochs": trainer.state.epoch, "train_blocks": len(train_ds),
        "train_loss": train_loss, "best_val_loss": best,
        "best_val_perplexity": math.exp(best) if best is not None and best < 50 else None,
        "processes": args.world_size,
    }
    state = gathered_state(trainer)
    if not main:
        return record
    write_loss_history(live_dir, trainer.state.log_history)
    save_final(trainer, tokenizer, method, model_dir, output_dir, record, state, row.trust_remote_code)
    seconds = time.perf_counter() - start
    timing = {k: v for k, v in result.metrics.items() if is_timing(k)}
    write_timing("train", {"seconds": round(seconds, 1), "resumed_from": resume, **timing})
    log.info("train: done in %.0fs, %d steps, best val loss %.4f -> %s", seconds, record["steps"],
             best if best is not None else float("nan"), output_dir)
    return record


def _training_args(cfg: TrainParams, checkpoint_dir: Path, precision: str):
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


def run(params: dict[str, Any], model_dir: str | Path | None = None, data: str | Path = PREPARED_DIR,
        out: str | Path = FINETUNED, live: str | Path = LIVE_DIR, checkpoints: str | Path = CHECKPOINTS) -> dict[str, Any]:
    """The train stage: fine-tune the `model:` row (base checkpoint at `model_dir`, default models/base/<model>)."""
    cfg = load_section(TrainParams, params, "train")
    row = model_row(params)
    return train(cfg, row, Path(model_dir or base_model_dir(params["model"])), Path(data), Path(out), Path(live),
                 Path(checkpoints))


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("train", __doc__)
    parser.add_argument("--model-dir", help="base checkpoint (default: models/base/<model>)")
    parser.add_argument("--data", default=PREPARED_DIR, help=f"split directory (default: {PREPARED_DIR})")
    parser.add_argument("--out", default=FINETUNED, help=f"fine-tuned checkpoint (default: {FINETUNED})")
    parser.add_argument("--live", default=LIVE_DIR, help=f"dvclive directory (default: {LIVE_DIR})")
    parser.add_argument("--checkpoints", default=CHECKPOINTS, help=f"resumable checkpoints (default: {CHECKPOINTS})")
    args = parser.parse_args(argv)
    return runner.execute("train", args, lambda params: run(params, args.model_dir, args.data, args.out, args.live,
                                                            args.checkpoints))


if __name__ == "__main__":
    raise SystemExit(main())
