"""`notelm <stage>`: one entry point for every pipeline stage (what dvc.yaml calls).

Each subcommand reads params.yaml (or --params) and runs one stage module's `run`. Errors a user
can fix (bad params, bad input files, missing weights) print one clear message and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from notelm.config import NoteLMError, load_params

# subcommand -> (module, help); the module's run(params, **options) does the work.
STAGES: dict[str, tuple[str, str]] = {
    "synthesize": ("notelm.synthetic", "write the synthetic NOTEEVENTS.csv.gz corpus"),
    "prepare": ("notelm.data", "clean, split by patient and build prompt/target examples"),
    "audit": ("notelm.leakage", "measure train/test leakage; fail above audit.fail_on"),
    "base-model": ("notelm.models", "materialise the selected model row as models/base/<model>"),
    "train": ("notelm.train", "fine-tune the base model (full, lora or qlora)"),
    "generate": ("notelm.generate", "complete the test prompts with one model variant"),
    "evaluate": ("notelm.evaluate", "score generations with ROUGE and BERTScore"),
    "report": ("notelm.report", "write reports/report.md with tables and charts"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notelm", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in STAGES.items():
        cmd = sub.add_parser(name, help=help_text)
        if name == "generate":
            cmd.add_argument("--variant", required=True, choices=["pretrained", "finetuned"])
    return parser


def _quiet_libraries() -> None:
    """Offline-friendly, quiet defaults for the HF stack (a user's own settings win)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DISABLE_TQDM", "1")


def main(argv: list[str] | None = None) -> int:
    """Run one stage; return the process exit code (0 ok, 1 user-fixable error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    _quiet_libraries()
    try:
        params = load_params(args.params)
        module = importlib.import_module(STAGES[args.command][0])
        run: Callable[..., Any] = module.run
        options = {"variant": args.variant} if args.command == "generate" else {}
        result = run(params, **options)
    except NoteLMError as exc:
        print(f"notelm {args.command}: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
