"""The `generate` stage: complete every scored test prompt with one model (the pre-trained base or the fine-tuned one).

Decoding is batched (src/notelm/decoding.py). Each output line holds the continuation only — the tokens
after the prompt — never the prompt itself:

    {"note_id", "prompt", "reference", "completion", "prompt_tokens", "completion_tokens", "stopped_at_budget",
     "target_nll", "target_tokens"}

The budget `generate.max_new_tokens: auto` is the length of the longest test target in the model's own
tokens, so no continuation is cut short before it could cover its reference (`stopped_at_budget` says
which ran out); evaluate then cuts every system, models and baselines alike, at data.max_target_words.

`target_nll` is the summed negative log-likelihood (nats) of the reference given the prompt under the
same model, over `target_tokens` tokens: evaluate turns it into the model's perplexity on the test
targets. Wall time and tokens/s go to the log and logs/generate_<variant>.json, never into the
generations file (a DVC output), so the same model writes the same file.

    python -m notelm.stages.generate --model-dir models/finetuned --test data/prepared/test.jsonl \
        --out generations/finetuned.jsonl
    accelerate launch --num_processes 4 -m notelm.stages.generate ...   # data-parallel: 4 GPUs (or CPU processes)
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from notelm import runner
from notelm.artifacts import (
    PREPARED_DIR,
    read_jsonl,
    scored,
    split_path,
    variant_of,
    write_jsonl,
    write_timing,
)
from notelm.decoding import complete, target_nll
from notelm.errors import NoteLMError
from notelm.params import GenerateParams, load_section, model_row
from notelm.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def generate(model_dir: Path, test_path: Path, out_path: Path, cfg: GenerateParams,
             trust_remote_code: bool = False) -> dict[str, Any]:
    """Complete every example of `test_path` with the checkpoint in `model_dir`; write `out_path` atomically.

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
    cfg = replace(cfg, max_new_tokens=token_budget(tokenizer, [r["target"] for r in rows], cfg.max_new_tokens))
    mine = list(range(state.process_index, len(rows), state.num_processes))  # every N-th: lengths stay mixed
    prompts = [rows[i]["prompt"] for i in mine]
    tick = time.perf_counter()
    outputs = complete(model, tokenizer, prompts, cfg, desc=f"generate {model_dir.name}")
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
              "seconds": round(seconds, 1), "processes": state.num_processes, "main_process": state.is_main_process}
    if not state.is_main_process:
        return result
    write_jsonl(out_path, lines)
    log.info("generate: %d completions, %d tokens in %.1fs (%.1f tokens/s, %d process(es), budget %d, %d ran out) -> %s",
             len(lines), tokens, seconds, tokens / max(seconds, 1e-9), state.num_processes, cfg.max_new_tokens,
             sum(line["stopped_at_budget"] for line in lines), out_path)
    return result


def token_budget(tokenizer, targets: list[str], max_new_tokens: int | str) -> int:
    """`max_new_tokens` as given, or for `auto` the tokens the longest target takes (after its space)."""
    if max_new_tokens != "auto":
        return int(max_new_tokens)
    return max((len(tokenizer(" " + t, add_special_tokens=False)["input_ids"]) for t in targets), default=1)


def run(params: dict[str, Any], model_dir: str | Path, out: str | Path,
        test: str | Path = split_path("test", PREPARED_DIR)) -> dict[str, Any]:
    """The generate stage: the `generate:` params, the checkpoint in `model_dir` (of the `model:` row, whose
    trust_remote_code it follows), test prompts from `test` → `out`."""
    cfg = load_section(GenerateParams, params, "generate")
    trust = model_row(params).trust_remote_code  # the `model:` row's consent to run its repository's code
    result = generate(Path(model_dir), Path(test), Path(out), cfg, trust)
    if result.pop("main_process"):
        write_timing(f"generate_{variant_of(out)}", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("generate", __doc__)
    parser.add_argument("--model-dir", required=True, help="checkpoint (models/base/<model> or models/finetuned)")
    parser.add_argument("--out", required=True, help="generations file (generations/<variant>.jsonl)")
    parser.add_argument("--test", default=str(split_path("test")), help="test split (default: %(default)s)")
    args = parser.parse_args(argv)
    return runner.execute("generate", args, lambda params: run(params, args.model_dir, args.out, args.test))


if __name__ == "__main__":
    raise SystemExit(main())
