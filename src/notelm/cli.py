"""`notelm`: the stages by name (what `python -m notelm.stages.<stage>` runs), and the tools that are not stages.

    notelm prepare --out data/prepared      = python -m notelm.stages.prepare --out data/prepared
    notelm train -h                         a stage's options (its `Paths`), as dvc.yaml passes them
    notelm params [SECTION]                 every params.yaml knob: default, value in params.yaml, meaning
    notelm plan                             memory plan of every model row on this machine
    notelm plan --gpu 24GB [--gpus 4]       ... on a card you don't have (FSDP over several for the big rows)
    notelm compare [-a | -A] [--study]      models × variants × metrics over DVC experiments and branches
    notelm grid [--queue] [--offline]       the original study's runs (study/grid.yaml) as DVC experiments
    notelm grid --slurm [--grid FILE]       ... or your own grid, one Slurm array task per point
    notelm grid status | collect            each point's state and log; pull the finished experiments
    notelm app                              the local completion page, arena and benchmark (Gradio)
    notelm reproduce --check                after `make repro`: did this machine reproduce the committed run?
    notelm facts [--misses]                 the fact extractor's precision and recall on the labelled lines

dvc.yaml calls `python -m notelm.stages.<stage>` so that a stage's dependencies are exactly the modules
it imports; this command only dispatches to the same `main`.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import pkgutil
import sys
from pathlib import Path

from notelm import stages
from notelm.cluster.slurm import GRIDS
from notelm.config.names import VARIANTS
from notelm.core import runner
from notelm.core.errors import NoteLMError
from notelm.core.loader import load_params
from notelm.core.paths import FACT_LINES, PARAMS_FILE, RATINGS
from notelm.study import GRID

ALIASES = {"base-model": "base_model"}


def stage_modules() -> dict[str, Path]:
    """Every stage by name (the modules of notelm.stages), with its file: the CLI's stage list."""
    return {m.name: Path(stages.__path__[0]) / f"{m.name}.py" for m in pkgutil.iter_modules(stages.__path__)}


def stage_summary(path: Path) -> tuple[str, list[str]]:
    """A stage module's first docstring line and its path options (`Paths` fields), read without importing it
    (importing a stage loads torch)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = (ast.get_docstring(tree) or "").splitlines()[0]
    paths = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Paths"), None)
    fields = [n.target.id for n in (paths.body if paths else []) if isinstance(n, ast.AnnAssign)]
    return doc, [f"--{f.replace('_', '-')}" for f in fields]


def _add_stages(sub) -> None:
    for name, path in stage_modules().items():
        doc, options = stage_summary(path)
        shown = " ".join(options + ["--params"])
        sub.add_parser(name, add_help=False, aliases=[a for a, s in ALIASES.items() if s == name],
                       help=f"{doc.removeprefix('The ').rstrip('.')} [{shown}]; notelm {name} -h for the options")


def _add_app(sub) -> None:
    app = sub.add_parser("app", help="serve the completion page and the arena (Gradio); not a pipeline stage")
    app.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    app.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    app.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    app.add_argument("--ratings-path", default=RATINGS, help=f"JSONL file the arena ratings append to ({RATINGS})")
    app.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                     help="serve this checkpoint (repeatable); default: every checkpoint under models/")
    app.add_argument("--concurrency", type=int, default=2, help="model calls served at once; the rest queue")
    app.add_argument("--allow-memorizing", action="store_true",
                     help="also serve weights whose memorization gate failed (metrics/detail/memorization.json); "
                          "the page says so")
    app.add_argument("--auth-file", help="users allowed in: lines user:hash from `notelm passwd USER`")
    app.add_argument("--auth-env", metavar="VAR", help="... or an environment variable holding user:hash,user:hash")
    app.add_argument("--insecure-no-auth", action="store_true",
                     help="serve a non-loopback address without sign-in (only on a network that is yours alone)")
    app.set_defaults(func=_serve_app)
    passwd = sub.add_parser("passwd", help="print a user:hash line for `notelm app --auth-file`; not a stage")
    passwd.add_argument("user")
    passwd.set_defaults(func=_passwd)


def _add_plan(sub) -> None:
    plan = sub.add_parser("plan", help="estimated training memory of every model row vs this machine; not a stage")
    plan.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    plan.add_argument("--gpu", help="plan for a card you name instead of this machine: a size (16GB, 24GB, 40GB, "
                                    "80GB, ...) or a card (notelm plan --gpu h100)")
    plan.add_argument("--gpus", type=int, help="with --gpu: plan the rows no single card holds for this many cards "
                                               "(FSDP); default: the fewest of 2, 4, 8 that hold them")
    plan.set_defaults(func=_plan)
    knobs = sub.add_parser("params", help="every params.yaml knob with its default, value and meaning; not a stage")
    knobs.add_argument("section", nargs="?", help="one section (data, train, ...); default: all")
    knobs.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    knobs.set_defaults(func=_knobs)


def _add_compare(sub) -> None:
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
    cmp.add_argument("--variant", default=VARIANTS[1], help=f"the variant --paired compares (default: {VARIANTS[1]})")
    cmp.set_defaults(func=_compare)
    _add_grid(sub)
    rep = sub.add_parser("reproduce", help="the workspace's metrics against the committed run: verdicts, moves, "
                                           "the machine facts that explain them; not a stage")
    rep.add_argument("--check", action="store_true", help="exit 1 when a headline verdict changed")
    rep.add_argument("--rev", default="HEAD", help="the commit to compare with (default: HEAD)")
    rep.add_argument("--root", default=".", help="the repository (default: .)")
    rep.add_argument("--save", metavar="FILE", help="also write the comparison as JSON (e.g. "
                                                    "benchmarks/results/reproduce.json, which docs are made from)")
    rep.set_defaults(func=_reproduce)


def _add_grid(sub) -> None:
    grid = sub.add_parser("grid", help="a grid of DVC experiments (default: the study's, study/grid.yaml): print, "
                                       "queue here, or submit to Slurm; status and collect; not a stage")
    grid.add_argument("action", nargs="?", choices=("status", "collect"),
                      help="status: each submitted point's state and log; collect: pull the finished experiments "
                           "(of the grid submitted last, or of --grid / --dir)")
    grid.add_argument("--grid", default=GRID, metavar="FILE",
                      help=f"the grid: presets or a `matrix:` of -S overrides (default: {GRID}; docs/cluster.md)")
    where = grid.add_mutually_exclusive_group()
    where.add_argument("--queue", action="store_true", help="queue them here (then: dvc queue start -j 1)")
    where.add_argument("--slurm", action="store_true", help="submit them to Slurm, one array task per point")
    grid.add_argument("--offline", action="store_true", help="only the points whose weights are here already")
    grid.add_argument("--gpu", metavar="CARD", help="with --slurm: train each point on one card of this kind "
                                                    "(h100, a100, 24GB, ...; `notelm plan --gpu`); default: CPU nodes")
    grid.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                      help="with --slurm: an sbatch option for every job (repeatable): --sbatch=--partition=gpu "
                           "--sbatch=--time=04:00:00 --sbatch=--cpus-per-task=8")
    grid.add_argument("--cpus", type=int, default=4, help="with --slurm: --cpus-per-task of every job, the threads "
                                                          "torch uses (default: 4; --sbatch=--cpus-per-task=N wins)")
    grid.add_argument("--max-running", type=int, default=0, metavar="N",
                      help="with --slurm: at most N tasks of an array at once (Slurm's --array=...%%N)")
    grid.add_argument("--dir", metavar="DIR", help=f"the grid's scripts, logs, states and ledger (default: "
                                                  f"{GRIDS}/<grid file name>; on storage the nodes share)")
    grid.add_argument("--dry-run", action="store_true", help="with --slurm: write the scripts, submit nothing")
    grid.add_argument("--outputs", action="store_true", help="with collect: also pull the experiments' outputs")
    grid.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    grid.set_defaults(func=_grid)


def _add_facts(sub) -> None:
    facts = sub.add_parser("facts", help="the fact extractor's precision and recall per kind on the labelled lines "
                                         "(labels/); not a stage")
    facts.add_argument("--misses", action="store_true", help="also every line whose facts it gets wrong")
    facts.set_defaults(func=_facts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notelm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_stages(sub)
    _add_app(sub)
    _add_plan(sub)
    _add_compare(sub)
    _add_facts(sub)
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
               model_dirs=models, ratings_path=Path(args.ratings_path), concurrency=args.concurrency,
               allow_memorizing=args.allow_memorizing)


def _passwd(args: argparse.Namespace) -> None:
    import getpass

    from notelm.app import password_hash

    print(f"{args.user}:{password_hash(getpass.getpass(f'password for {args.user}: '))}")


def _compare(args: argparse.Namespace) -> None:
    from notelm.compare import compare, exp_show, paired_runs

    if args.paired:
        print(paired_runs(exp_show(args.all_branches, args.all_commits), *args.paired, args.variant), end="")
    else:
        print(compare(args.out_dir, args.all_branches, args.all_commits, args.from_json, args.study, args.ratings,
                      args.resample), end="")


def _grid(args: argparse.Namespace) -> None:
    from notelm.study import grid

    misplaced = [flag for flag, given, needs in (("--gpu", args.gpu, args.slurm), ("--sbatch", args.sbatch, args.slurm),
                                                ("--dry-run", args.dry_run, args.slurm),
                                                ("--max-running", args.max_running, args.slurm),
                                                ("--outputs", args.outputs, args.action == "collect"))
                 if given and not needs]
    if misplaced:
        raise NoteLMError(f"notelm grid: {', '.join(misplaced)} only with "
                          f"{'`collect`' if misplaced == ['--outputs'] else '--slurm'} (notelm grid -h)")
    if args.action or args.slurm:
        return _grid_slurm(args)
    print(grid(args.queue, args.offline, args.params, args.grid), end="")


def _grid_slurm(args: argparse.Namespace) -> None:
    """`notelm grid --slurm`, `notelm grid status`, `notelm grid collect` (src/notelm/cluster/slurm.py)."""
    from notelm.cluster import slurm

    grid_dir = Path(args.dir) if args.dir else GRIDS / slurm.grid_name(Path(args.grid).stem)
    if args.action:
        if not args.dir and args.grid == GRID:  # no grid named: the one submitted last
            grid_dir = next(iter(slurm.grid_dirs()), grid_dir)
        print(slurm.status_text(grid_dir) if args.action == "status" else slurm.collect(grid_dir, outputs=args.outputs),
              end="")
        return None
    from notelm.cluster import points, resources
    from notelm.plan import parse_gpu
    from notelm.study import offline_points

    params = load_params(args.params)
    todo, lines = points.load(args.grid), []
    if args.offline:
        todo, lines = offline_points(todo, params)
    card = parse_gpu(args.gpu) if args.gpu else None
    requests, refused = {}, []
    for point in list(todo):
        try:
            requests[point.name] = resources.for_point(point, params, card)
        except resources.TooBig as exc:
            refused.append(f"# not submitted: {exc}")
            todo.remove(point)
    shared = points.shared_stages(todo, points.dvc_stages())
    extra = [f"--cpus-per-task={args.cpus}", *args.sbatch]
    print("\n".join(lines + refused + [slurm.submit(todo, requests, shared, grid_dir, slurm.grid_name(grid_dir.name),
                                                    extra, dry_run=args.dry_run, max_running=args.max_running)]),
          end="")
    return 1 if refused else None  # the others went, but the grid is not whole


def _reproduce(args: argparse.Namespace) -> int:
    from notelm.reproduce import main

    command = " ".join(["notelm reproduce", *(["--check"] if args.check else []),
                        *([f"--rev {args.rev}"] if args.rev != "HEAD" else []),
                        *([f"--root {args.root}"] if args.root != "." else [])])
    return main(Path(args.root), args.rev, args.check, args.save, command)


def _plan(args: argparse.Namespace) -> None:
    from notelm.plan import gpu_table, table

    params = load_params(args.params)
    print(gpu_table(params, args.gpu, args.gpus) if args.gpu else table(params))


def _facts(args: argparse.Namespace) -> None:
    from notelm.evaluation import extraction
    from notelm.report.facts import extraction_lines

    sets = {name: extraction.read_labelled(Path(path)) for name, path in FACT_LINES.items()}
    print("\n".join(extraction_lines({name: extraction.measure(lines) for name, lines in sets.items()})))
    for name, lines in sets.items() if args.misses else ():
        for item, missed, extra in extraction.misses(lines):
            print(f"{FACT_LINES[name]} id {item.id}: {item.line}\n  missed {sorted(missed)}\n  extra  {sorted(extra)}")


def _knobs(args: argparse.Namespace) -> None:
    from notelm.config.knobs import knobs_text

    print(knobs_text(load_params(args.params), args.section), end="")


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a stage's `main` or run a tool; return the process exit code (0 ok, 1 user-fixable error)."""
    argv = sys.argv[1:] if argv is None else argv
    args, rest = _parser().parse_known_args(argv)
    stage = ALIASES.get(args.command, args.command)
    if stage in stage_modules():
        return importlib.import_module(f"notelm.stages.{stage}").main(rest)
    if rest:
        _parser().error(f"unrecognized arguments: {' '.join(rest)}")
    runner.setup_logging()
    runner.quiet_libraries()
    try:
        code = args.func(args)
    except NoteLMError as exc:
        print(f"notelm {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
