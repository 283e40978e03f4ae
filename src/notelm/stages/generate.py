"""The `generate` stage: complete every scored test prompt with one model (the pre-trained base or the fine-tuned one).

Decoding is batched (src/notelm/generation/decoding.py). Each output line holds the continuation only — the tokens
after the prompt — never the prompt itself:

    {"note_id", "prompt", "reference", "completion", "prompt_tokens", "completion_tokens", "stop",
     "target_nll", "target_tokens"}

A continuation ends at the model's EOS, or once it has written data.max_target_words words (the references'
cap: evaluate cuts every system, models and baselines alike, there), or when the token budget runs out;
`stop` says which (decoding.STOPS). The budget `generate.max_new_tokens: auto` is the word cap times the most
tokens the model's own tokenizer spends on one word of a test reference, times `generate.budget_margin`: a
model that writes words like the references' reaches the word cap first, whatever its tokenizer does to digit
runs. Decoding goes in rounds as long as the longest reference in tokens, the rows still writing going on in a
batch of their own, so the margin costs time only for the continuations that need it.

`target_nll` is the summed negative log-likelihood (nats) of the reference given the prompt under the
same model, over `target_tokens` tokens: evaluate turns it into the model's perplexity on the test
targets. Wall time and tokens/s go to the log and logs/generate_<variant>.json, never into the
generations file (a DVC output), so the same model writes the same file.

Remote code runs only with the consent of the `model:` row as the base_model stage resolved it (`--base`,
models/base/<model>/notelm_source.json), never with a checkpoint's own say.

    python -m notelm.stages.generate --model-dir models/finetuned --base models/base/smollm2-135m \
        --test data/prepared/test.jsonl --out generations/finetuned.jsonl
    accelerate launch --num_processes 4 -m notelm.stages.generate ...   # data-parallel: 4 GPUs (or CPU processes)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from notelm.config.data import DataParams
from notelm.config.generate import GenerateParams
from notelm.config.models import recorded_row
from notelm.config.names import scored
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.files import read_jsonl, write_jsonl, write_timing
from notelm.core.loader import load_section
from notelm.core.paths import base_model_dir, split_path, variant_of
from notelm.generation.decoding import STOPS, complete, target_nll, token_budget
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


@dataclass(frozen=True)
class Paths:
    """The generate stage's inputs and output."""

    model_dir: str
    """Checkpoint to complete with (models/base/<model> or models/finetuned)."""
    out: str
    """Generations file (generations/<variant>.jsonl): the file name is the variant."""
    test: str = str(split_path("test"))
    """Test split."""
    base: str | None = None
    """Base model whose recorded row gives consent to run repository code (default: models/base/<model>)."""


def generate(model_dir: Path, test_path: Path, out_path: Path, cfg: GenerateParams, word_cap: int | None = None,
             trust_remote_code: bool = False) -> dict[str, Any]:
    """Complete every example of `test_path` with the checkpoint in `model_dir`, each up to `word_cap` words;
    write `out_path` atomically.

    Under `accelerate launch --num_processes N` each process completes every N-th prompt on its own device
    (a GPU each, or CPU processes over gloo) and the main process writes the one file, in test order — for
    greedy decoding the same file one process writes. Returns {examples, completion_tokens, seconds,
    processes, main_process}; the file holds no timing.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    if not test_path.is_file():
        raise NoteLMError(f"{test_path}: test split not found; run `dvc repro prepare` first")
    import torch

    # this process's share and device: one process, or one of an `accelerate launch` (gloo between CPU processes)
    state = PartialState(cpu=not torch.cuda.is_available())
    rows = scored(read_jsonl(test_path))[: cfg.limit]
    model, tokenizer = load_checkpoint(model_dir, cfg.dtype, trust_remote_code)
    model.to(state.device)
    budget, round_tokens = token_budget(tokenizer, [r["target"] for r in rows], cfg, word_cap)
    cfg = replace(cfg, max_new_tokens=budget)
    mine = list(range(state.process_index, len(rows), state.num_processes))  # every N-th: lengths stay mixed
    prompts = [rows[i]["prompt"] for i in mine]
    tick = time.perf_counter()
    outputs = complete(model, tokenizer, prompts, cfg, f"generate {model_dir.name}", word_cap, round_tokens)
    seconds = time.perf_counter() - tick
    nll = target_nll(model, tokenizer, prompts, [rows[i]["target"] for i in mine], cfg,
                     desc=f"likelihood {model_dir.name}")
    done = [(i, o, n) for i, o, n in zip(mine, outputs, nll)]
    if state.num_processes > 1:
        done = gather_object(done)  # every process's share, on every process
    done.sort(key=lambda item: item[0])
    lines = [{"note_id": rows[i]["note_id"], "prompt": rows[i]["prompt"], "reference": rows[i]["target"], **o,
              "target_nll": round(n, 4), "target_tokens": t} for i, o, (n, t) in done]
    tokens = sum(line["completion_tokens"] for line in lines)
    result = {"examples": len(lines), "completion_tokens": tokens, "max_new_tokens": cfg.max_new_tokens,
              "round_tokens": round_tokens,
              "seconds": round(seconds, 1), "processes": state.num_processes, "main_process": state.is_main_process}
    if not state.is_main_process:
        return result
    write_jsonl(out_path, lines)
    log.info("generate: %d completions, %d tokens in %.1fs (%.1f tokens/s, %d process(es), budget %d; ended by %s) -> %s",
             len(lines), tokens, seconds, tokens / max(seconds, 1e-9), state.num_processes, cfg.max_new_tokens,
             ", ".join(f"{s} {sum(line['stop'] == s for line in lines)}" for s in STOPS), out_path)
    return result


def run(params: dict[str, Any], paths: Paths) -> dict[str, Any]:
    """The generate stage: the `generate:` params and data.max_target_words, the checkpoint in `paths.model_dir` (following the
    trust_remote_code of the row recorded in `paths.base`), test prompts from `paths.test` → `paths.out`."""
    cfg = load_section(GenerateParams, params)
    word_cap = load_section(DataParams, params).max_target_words
    trust = recorded_row(paths.base or base_model_dir(params["model"])).trust_remote_code
    result = generate(Path(paths.model_dir), Path(paths.test), Path(paths.out), cfg, word_cap, trust)
    if result.pop("main_process"):
        write_timing(f"generate_{variant_of(paths.out)}", result)
    return result


def main(argv: list[str] | None = None) -> int:
    return runner.main("generate", __doc__, Paths, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
