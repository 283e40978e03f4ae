"""How every stage runs from the command line: `python -m notelm.stages.<stage> [--params FILE] [paths]`.

Each stage declares its inputs and outputs once, as a frozen `Paths` dataclass whose defaults are the paths
of core/paths.py and whose fields carry their help as attribute docstrings; `main` builds the stage's argparse
from it, `notelm <stage> -h` shows the same options, and tests/test_contract.py checks the defaults against
the command in dvc.yaml, so a stage run by hand does what `dvc repro` does. An error the user can fix
(NoteLMError: bad params, bad input, missing weights) prints one message and exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from notelm.core.errors import NoteLMError
from notelm.core.loader import field_docs, load_params
from notelm.core.paths import PARAMS_FILE


def add_path_options(parser: argparse.ArgumentParser, paths_cls: type) -> None:
    """One `--<field>` option per field of the `Paths` dataclass: its default, help from its docstring;
    a field without a default is required, a tuple field takes one or more paths."""
    docs, hints = field_docs(paths_cls), typing.get_type_hints(paths_cls)
    for f in dataclasses.fields(paths_cls):
        many = typing.get_origin(hints[f.name]) is tuple
        required = f.default is dataclasses.MISSING
        shown = " ".join(f.default) if many and not required else f.default
        help_text = docs.get(f.name, "") + ("" if required or f.default is None else f" (default: {shown})")
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, required=required,
                            nargs="+" if many else None, default=None if required else f.default, help=help_text)


def parser(stage: str, doc: str | None, paths_cls: type) -> argparse.ArgumentParser:
    """The argument parser of `stage`: its `Paths` options and the options every stage has (--params, -v)."""
    p = argparse.ArgumentParser(prog=f"python -m notelm.stages.{stage}", description=(doc or "").splitlines()[0])
    add_path_options(p, paths_cls)
    p.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def paths_from(args: argparse.Namespace, paths_cls: type) -> Any:
    """The `Paths` instance the parsed options name."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(paths_cls)}
    return paths_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def quiet_libraries() -> None:
    """Offline-friendly, quiet defaults for the HF stack (a user's own settings win)."""
    for key, value in (("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                       ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("DISABLE_TQDM", "1")):
        os.environ.setdefault(key, value)


def setup_logging(verbose: bool = False) -> None:
    """One log line format for every command: time, level, module, message."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def execute(stage: str, args: argparse.Namespace, work: Callable[[dict[str, Any]], Any]) -> int:
    """Load the params file, run `work(params)`, print a dict result as JSON; return the exit code."""
    setup_logging(args.verbose)
    quiet_libraries()
    try:
        result = work(load_params(args.params))
    except NoteLMError as exc:
        print(f"notelm {stage}: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def main(stage: str, doc: str | None, paths_cls: type, run: Callable[[dict[str, Any], Any], Any],
         argv: Sequence[str] | None = None) -> int:
    """A stage's command line: parse its `Paths` options, then `run(params, paths)` under `execute`."""
    args = parser(stage, doc, paths_cls).parse_args(argv)
    paths = paths_from(args, paths_cls)
    return execute(stage, args, lambda params: run(params, paths))
