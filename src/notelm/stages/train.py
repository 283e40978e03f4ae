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
training code and library versions (see `fingerprint` in src/notelm/training/checkpoints.py; `train.resume: never`
always starts afresh), and the log says why it resumes, starts fresh, or discards an older run's checkpoints;
`models/finetuned/` is only ever replaced whole, at the end.

The loss is computed `train.loss_chunk_tokens` tokens at a time (src/notelm/training/loss.py), so the
batch × length × vocabulary logits are never built whole; null keeps the model's own loss.

Before loading anything, the memory plan (src/notelm/training/plan.py) refuses a run that would not fit,
naming what would. Under `accelerate launch --num_processes N` the same code runs data-parallel
(DDP; gloo on CPU) and only the main process writes files.

    python -m notelm.stages.train --model-dir models/base/smollm2-135m --data data/prepared \
        --out models/finetuned --live dvclive --checkpoints models/checkpoints

Wall-clock figures (training seconds, samples per second) go to the log and logs/train.json, never into
models/finetuned/ or dvclive/, so the same run gives byte-identical DVC outputs.

This module is the stage only (params, paths, orchestration); the library code it runs lives in
src/notelm/training/blocks.py (the token blocks), src/notelm/training/checkpoints.py (fingerprint and resume) and
src/notelm/training/trainer.py (model loading, the Trainer glue and the final outputs).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.models import ModelRow, recorded_row
from notelm.config.train import TrainParams
from notelm.core import runner
from notelm.core.errors import ParamsError
from notelm.core.files import write_json, write_timing
from notelm.core.loader import load_section
from notelm.core.paths import CHECKPOINTS, FINETUNED, LIVE_DIR, PREPARED_DIR, base_model_dir, split_path
from notelm.training import canaries, plan
from notelm.training.blocks import build_dataset, count_examples
from notelm.training.checkpoints import FINGERPRINT, fingerprint, resume_point
from notelm.training.trainer import (
    gathered_state,
    is_timing,
    load_for_training,
    log_train_loss_callback,
    make_trainer,
    save_final,
    training_args,
    whole_run_loss,
    write_loss_history,
)

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def planted(cfg: TrainParams, train_path: Path) -> tuple[dict[int, list[str]], dict[str, Any] | None]:
    """The canaries of this run: ({train example index: sentences}, the record the memorize stage reads:
    template, planted and control secrets, repeats, the sentences planted in each note by its index), or ({}, None)
    with train.canaries: 0."""
    if not cfg.canaries:
        return {}, None
    secrets, controls = canaries.draw(cfg.canaries, cfg.seed)
    where = canaries.placements(count_examples(train_path), secrets, cfg.canary_repeats, cfg.seed)
    return where, {"template": canaries.TEMPLATE, "planted": secrets, "controls": controls,
                   "repeats": cfg.canary_repeats, "notes": len(where),
                   "placements": {str(i): sentences for i, sentences in sorted(where.items())}}


def _setup(cfg: TrainParams, row: ModelRow, model_dir: Path, data_dir: Path):
    """Everything before the Trainer runs: the memory check, the model, the token blocks (canaries planted in
    train only). Returns (method, precision, block length, model, tokenizer, train dataset, val dataset,
    canary record)."""
    import torch

    method, precision, length = cfg.method_for(row), plan.resolve_precision(cfg.precision), cfg.block_length(row)
    if precision == "fp16" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
    if cfg.check_memory and (need := plan.check(row, model_dir, cfg, precision == "bf16")):
        log.info("train: memory plan ~%.1f GB of %.1f GB %s", need["estimate_gb"], need["available_gb"], need["where"])
    model, tokenizer = load_for_training(row, method, model_dir, cfg, precision)
    where, canary_record = planted(cfg, split_path("train", data_dir))
    train_ds = build_dataset(split_path("train", data_dir), tokenizer, length, cfg.packing, canaries=where)
    val_ds = build_dataset(split_path("val", data_dir), tokenizer, length, cfg.packing)
    return method, precision, length, model, tokenizer, train_ds, val_ds, canary_record


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
    method, precision, length, model, tokenizer, train_ds, val_ds, canary_record = _setup(cfg, row, model_dir, data_dir)
    args = training_args(cfg, checkpoint_dir, precision)
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
        "processes": args.world_size, "canaries": canary_record,
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


@dataclass(frozen=True)
class Paths:
    """The train stage's inputs and outputs."""

    model_dir: str | None = None
    """Base checkpoint, whose notelm_source.json holds the model row (default: models/base/<model>)."""
    data: str = PREPARED_DIR
    """Split directory (train.jsonl, val.jsonl)."""
    out: str = FINETUNED
    """Fine-tuned checkpoint."""
    live: str = LIVE_DIR
    """dvclive directory (loss curves)."""
    checkpoints: str = CHECKPOINTS
    """Resumable checkpoints (git-ignored, no DVC output: they survive a killed run)."""


def run(params: dict[str, Any], paths: Paths = Paths()) -> dict[str, Any]:
    """The train stage: fine-tune the base checkpoint at `paths.model_dir` with the row base_model recorded there."""
    cfg = load_section(TrainParams, params)
    model_dir = Path(paths.model_dir or base_model_dir(params["model"]))
    return train(cfg, recorded_row(model_dir), model_dir, Path(paths.data), Path(paths.out), Path(paths.live),
                 Path(paths.checkpoints))


def main(argv: list[str] | None = None) -> int:
    return runner.main("train", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
