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
from notelm.params import GenerateParams, load_section
from notelm.weights import load_checkpoint

log = logging.getLogger(__spec__.name)  # the module's own name, also when run as `python -m`


def generate(model_dir: Path, test_path: Path, out_path: Path, cfg: GenerateParams) -> dict[str, Any]:
    """Complete every example of `test_path` with the checkpoint in `model_dir`; write `out_path` atomically.

    Returns {examples, completion_tokens, seconds}; the file holds no timing.
    """
    if not test_path.is_file():
        raise NoteLMError(f"{test_path}: test split not found; run `dvc repro prepare` first")
    rows = scored(read_jsonl(test_path))[: cfg.limit]
    model, tokenizer = load_checkpoint(model_dir, cfg.dtype)
    cfg = replace(cfg, max_new_tokens=token_budget(tokenizer, [r["target"] for r in rows], cfg.max_new_tokens))
    prompts = [r["prompt"] for r in rows]
    tick = time.perf_counter()
    outputs = complete(model, tokenizer, prompts, cfg)
    seconds = time.perf_counter() - tick
    nll = target_nll(model, tokenizer, prompts, [r["target"] for r in rows], cfg)
    lines = [{"note_id": r["note_id"], "prompt": r["prompt"], "reference": r["target"], **o,
              "target_nll": round(n, 4), "target_tokens": t}
             for r, o, (n, t) in zip(rows, outputs, nll)]
    write_jsonl(out_path, lines)
    tokens = sum(o["completion_tokens"] for o in outputs)
    log.info("generate: %d completions, %d tokens in %.1fs (%.1f tokens/s, budget %d, %d ran out) -> %s",
             len(lines), tokens, seconds, tokens / max(seconds, 1e-9), cfg.max_new_tokens,
             sum(o["stopped_at_budget"] for o in outputs), out_path)
    return {"examples": len(lines), "completion_tokens": tokens, "max_new_tokens": cfg.max_new_tokens,
            "seconds": round(seconds, 1)}


def token_budget(tokenizer, targets: list[str], max_new_tokens: int | str) -> int:
    """`max_new_tokens` as given, or for `auto` the tokens the longest target takes (after its space)."""
    if max_new_tokens != "auto":
        return int(max_new_tokens)
    return max((len(tokenizer(" " + t, add_special_tokens=False)["input_ids"]) for t in targets), default=1)


def run(params: dict[str, Any], model_dir: str | Path, out: str | Path,
        test: str | Path = split_path("test", PREPARED_DIR)) -> dict[str, Any]:
    """The generate stage: the `generate:` params, the checkpoint in `model_dir`, test prompts from `test` → `out`."""
    cfg = load_section(GenerateParams, params, "generate")
    result = generate(Path(model_dir), Path(test), Path(out), cfg)
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
