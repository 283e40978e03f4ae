"""How every stage runs from the command line: `python -m notelm.stages.<stage> [--params FILE] [paths]`.

dvc.yaml calls each stage this way and names its inputs and outputs as options; each option's default
is the path in src/notelm/artifacts.py, so a stage run by hand does what `dvc repro` does. An error the
user can fix (NoteLMError: bad params, bad input, missing weights) prints one message and exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from notelm.errors import NoteLMError
from notelm.params import PARAMS_FILE, load_params


def parser(stage: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser for `stage` with the options every stage has (--params, -v)."""
    p = argparse.ArgumentParser(prog=f"python -m notelm.stages.{stage}", description=(doc or "").splitlines()[0])
    p.add_argument("--params", default=PARAMS_FILE, help=f"params file (default: {PARAMS_FILE})")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


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
