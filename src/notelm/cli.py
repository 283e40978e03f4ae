"""`notelm`: the stages by name (what `python -m notelm.stages.<stage>` runs), and the tools that are not stages.

    notelm prepare --out data/prepared      = python -m notelm.stages.prepare --out data/prepared
    notelm plan                             memory plan of every model row on this machine
    notelm plan --gpu 24GB [--gpus 4]       ... on a card you don't have (FSDP over several for the big rows)
    notelm compare [-a | -A] [--study]      models × variants × metrics over DVC experiments and branches
    notelm grid [--queue] [--offline]       the original study's runs (study/grid.yaml) as DVC experiments
    notelm app                              the local completion page, arena and benchmark (Gradio)

dvc.yaml calls `python -m notelm.stages.<stage>` so that a stage's dependencies are exactly the modules
it imports; this command only dispatches to the same `main`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from notelm import runner
from notelm.artifacts import RATINGS
from notelm.errors import NoteLMError
from notelm.params import PARAMS_FILE, load_params

STAGES = {
    "synthesize": "write the synthetic NOTEEVENTS.csv.gz corpus",
    "prepare": "clean, split by patient and build prompt/target examples",
    "audit": "measure train/test leakage; fail above audit.fail_on",
    "base_model": "materialise the selected model row as models/base/<model>",
    "train": "fine-tune the base model (full, lora or qlora)",
    "generate": "complete the test prompts with one checkpoint",
    "evaluate": "score generations with ROUGE and BERTScore",
    "report": "write reports/report.md with tables and charts",
}
ALIASES = {"base-model": "base_model"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notelm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in STAGES.items():
        sub.add_parser(name, help=f"{help_text} (options: notelm {name} -h)", add_help=False,
                       aliases=[a for a, s in ALIASES.items() if s == name])
    app = sub.add_parser("app", help="serve the completion page and the arena (Gradio); not a pipeline stage")
    app.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    app.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    app.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    app.add_argument("--ratings-path", default=RATINGS, help=f"JSONL file the arena ratings append to ({RATINGS})")
    app.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                     help="serve this checkpoint (repeatable); default: every checkpoint under models/")
    app.add_argument("--concurrency", type=int, default=2, help="model calls served at once; the rest queue")
    app.add_argument("--auth-file", help="users allowed in: lines user:hash from `notelm passwd USER`")
    app.add_argument("--auth-env", metavar="VAR", help="... or an environment variable holding user:hash,user:hash")
    app.add_argument("--insecure-no-auth", action="store_true",
                     help="serve a non-loopback address without sign-in (only on a network that is yours alone)")
    passwd = sub.add_parser("passwd", help="print a user:hash line for `notelm app --auth-file`; not a stage")
    passwd.add_argument("user")
    plan = sub.add_parser("plan", help="estimated training memory of every model row vs this machine; not a stage")
    plan.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    from notelm.plan import GPU_CARDS

    plan.add_argument("--gpu", help="plan for a card you name instead of this machine: a size (16GB, 24GB, 40GB, "
                                    f"80GB, ...) or a card ({', '.join(GPU_CARDS)})")
    plan.add_argument("--gpus", type=int, help="with --gpu: plan the rows no single card holds for this many cards "
                                               "(FSDP); default: the fewest of 2, 4, 8 that hold them")
    cmp = sub.add_parser("compare", help="cross-model table over DVC experiments and branches; not a stage")
    cmp.add_argument("--out-dir", default="compare", help="where compare.md, .csv and radar.png go (default: compare/)")
    cmp.add_argument("-a", "--all-branches", action="store_true", help="also every branch tip (dvc exp show -a)")
    cmp.add_argument("-A", "--all-commits", action="store_true", help="also every commit (dvc exp show -A)")
    cmp.add_argument("--from-json", metavar="FILE", help="read a saved `dvc exp show --json` instead of running it")
    cmp.add_argument("--study", action="store_true", help="also the study's three tables beside ours (study/)")
    cmp.add_argument("--ratings", metavar="FILE", help="also the arena leaderboard of this ratings file "
                                                         "(e.g. ratings/arena.jsonl)")
    cmp.add_argument("--resample", choices=("prompt", "rater"), default="prompt",
                     help="what the leaderboard's bootstrap resamples (default: prompt)")
    cmp.add_argument("--paired", nargs=2, metavar=("FIRST", "SECOND"),
                     help="the paired, patient-clustered difference SECOND − FIRST of two runs on the same test notes")
    cmp.add_argument("--variant", default="finetuned", help="the variant --paired compares (default: finetuned)")
    grid = sub.add_parser("grid", help="the study's grid (study/grid.yaml) as DVC experiments; not a stage")
    grid.add_argument("--queue", action="store_true", help="queue them (then: dvc queue start -j 1); default: print")
    grid.add_argument("--offline", action="store_true", help="only the presets whose weights are here already")
    return parser


def _serve_app(args: argparse.Namespace) -> None:
    """`notelm app`: parse --model NAME=DIR pairs and serve until interrupted."""
    from notelm import app

    models = None
    if args.model:
        pairs = [m.partition("=") for m in args.model]
        if any(not name or not sep or not path for name, sep, path in pairs):
            raise NoteLMError(f"--model expects NAME=DIR, got {args.model}")
        models = {name: Path(path) for name, _, path in pairs}
    if args.concurrency < 1:
        raise NoteLMError(f"--concurrency must be >= 1, got {args.concurrency}")
    users = None
    if args.auth_file:
        path = Path(args.auth_file)
        if not path.is_file():
            raise NoteLMError(f"--auth-file {path}: not found")
        users = app.read_users(path.read_text(encoding="utf-8"), str(path))
    elif args.auth_env:
        users = app.read_users(os.environ.get(args.auth_env, ""), f"${args.auth_env}")
    app.launch(args.host, args.port, args.share, users=users, insecure_no_auth=args.insecure_no_auth,
               model_dirs=models, ratings_path=Path(args.ratings_path), concurrency=args.concurrency)


def _tool(args: argparse.Namespace) -> None:
    """Run one of the commands that are not stages."""
    if args.command == "app":
        _serve_app(args)
    elif args.command == "compare":
        from notelm.compare import compare, exp_show, paired_runs

        if args.paired:
            print(paired_runs(exp_show(args.all_branches, args.all_commits), *args.paired, args.variant), end="")
        else:
            print(compare(args.out_dir, args.all_branches, args.all_commits, args.from_json, args.study, args.ratings,
                          args.resample), end="")
    elif args.command == "passwd":
        import getpass

        from notelm.app import password_hash

        print(f"{args.user}:{password_hash(getpass.getpass(f'password for {args.user}: '))}")
    elif args.command == "grid":
        from notelm.study import grid

        print(grid(args.queue, args.offline), end="")
    elif args.gpu:
        from notelm.plan import gpu_table

        print(gpu_table(load_params(args.params), args.gpu, args.gpus))
    else:
        from notelm.plan import table

        print(table(load_params(args.params)))


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a stage's `main` or run a tool; return the process exit code (0 ok, 1 user-fixable error)."""
    argv = sys.argv[1:] if argv is None else argv
    args, rest = _parser().parse_known_args(argv)
    stage = ALIASES.get(args.command, args.command)
    if stage in STAGES:
        return importlib.import_module(f"notelm.stages.{stage}").main(rest)
    if rest:
        _parser().error(f"unrecognized arguments: {' '.join(rest)}")
    runner.setup_logging()
    runner.quiet_libraries()
    try:
        _tool(args)
    except NoteLMError as exc:
        print(f"notelm {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
