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
    app = sub.add_parser("app", help="serve the completion page and the arena (Gradio); not a pipeline stage")
    app.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    app.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    app.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    app.add_argument("--ratings-path", default="ratings/arena.jsonl", help="JSONL file the arena ratings append to")
    app.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                     help="serve this checkpoint (repeatable); default: every checkpoint under models/")
    app.add_argument("--concurrency", type=int, default=2, help="model calls served at once; the rest queue")
    sub.add_parser("plan", help="estimated training memory of every model row vs this machine; not a pipeline stage")
    cmp = sub.add_parser("compare", help="cross-model table over DVC experiments and branches; not a pipeline stage")
    cmp.add_argument("--out-dir", default="compare", help="where compare.md, .csv and radar.png go (default: compare/)")
    cmp.add_argument("-a", "--all-branches", action="store_true", help="also every branch tip (dvc exp show -a)")
    cmp.add_argument("-A", "--all-commits", action="store_true", help="also every commit (dvc exp show -A)")
    cmp.add_argument("--from-json", metavar="FILE", help="read a saved `dvc exp show --json` instead of running it")
    return parser


def _quiet_libraries() -> None:
    """Offline-friendly, quiet defaults for the HF stack (a user's own settings win)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DISABLE_TQDM", "1")


def _serve_app(args: argparse.Namespace) -> None:
    """`notelm app`: parse --model NAME=DIR pairs and serve until interrupted."""
    from pathlib import Path

    from notelm import app

    models = None
    if args.model:
        pairs = [m.partition("=") for m in args.model]
        if any(not name or not sep or not path for name, sep, path in pairs):
            raise NoteLMError(f"--model expects NAME=DIR, got {args.model}")
        models = {name: Path(path) for name, _, path in pairs}
    if args.concurrency < 1:
        raise NoteLMError(f"--concurrency must be >= 1, got {args.concurrency}")
    app.launch(args.host, args.port, args.share, model_dirs=models, ratings_path=Path(args.ratings_path),
               concurrency=args.concurrency)


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
        if args.command == "app":
            _serve_app(args)
            return 0
        if args.command == "compare":
            from notelm.compare import compare

            print(compare(args.out_dir, args.all_branches, args.all_commits, args.from_json), end="")
            return 0
        params = load_params(args.params)
        if args.command == "plan":
            from notelm.plan import table

            print(table(params))
            return 0
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
