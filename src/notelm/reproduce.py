"""`notelm reproduce --check`: after `make repro`, did this machine reproduce the committed run?

Compares every metrics file of the workspace (metrics/**/*.json) with the same file as committed (`git show
REV:path`) and prints: whether every verdict is equal (a claim's verdict, which baseline it is against, a gate),
how many values moved, the largest moves measured against the committed 95 % interval's half-width of that
metric, and the machine facts that explain a difference (bf16 or fp32 training: `train.precision: auto` trains
in bf16 only on a CPU or GPU with native bf16). Exits 1 when a verdict of a headline file (the `metrics:` files
of dvc.yaml, what `dvc exp show` lists) changed; changed verdicts of the detail files are listed as claims that
depend on the machine. Written by hand: `dvc metrics diff` lists every moved value but cannot weigh a move
against its interval or tell a verdict from a number.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from notelm import machine
from notelm.core.errors import NoteLMError
from notelm.core.files import write_json

CLAIM_SUFFIXES = ("_verdict", "_baseline")  # a claim's parts that are words, not numbers
TRAIN_LOG = "dvclive/params.yaml"  # the Trainer's arguments, committed with the run: `bf16: true|false`


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": leaf} of a nested dict (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def is_claim(key: str, value: Any) -> bool:
    """A verdict, the baseline a claim is against, or a gate: words whose change changes what a claim says."""
    leaf = key.rsplit(".", 1)[-1]
    return isinstance(value, str) and (leaf.endswith(CLAIM_SUFFIXES) or leaf in ("verdict", "gate"))


def _git(root: Path, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def committed(root: Path, rev: str, path: str) -> str | None:
    """The text of `path` as committed at `rev`, or None where it is not in that commit."""
    return _git(root, "show", f"{rev}:{path}")


def metric_files(root: Path, rev: str) -> list[str]:
    """metrics/**/*.json of the workspace and of the commit `rev`, sorted."""
    listed = (_git(root, "ls-tree", "-r", "--name-only", rev, "metrics") or "").split()
    here = [str(p.relative_to(root)) for p in (root / "metrics").rglob("*.json")] if (root / "metrics").is_dir() else []
    return sorted({p for p in [*listed, *here] if p.endswith(".json")})


def headline_files(root: Path) -> set[str]:
    """The `metrics:` files of dvc.yaml's stages: the headline that `dvc exp show` lists."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {next(iter(m)) if isinstance(m, dict) else m for st in stages.values() for m in st.get("metrics") or []}


def moves(path: str, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Each number of `old` that `new` changed, with |change| / the committed interval's half-width where the
    metric has `_ci_low` / `_ci_high` beside it."""
    out = []
    for key, before in old.items():
        after = new.get(key)
        if isinstance(before, bool) or not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
            continue
        if after == before:
            continue
        low, high = old.get(f"{key}_ci_low"), old.get(f"{key}_ci_high")
        half = (high - low) / 2 if isinstance(low, (int, float)) and isinstance(high, (int, float)) else None
        out.append({"file": path, "key": key, "committed": before, "workspace": after,
                    "half_widths": abs(after - before) / half if half else None})
    return out


def training_precision(text: str | None) -> str | None:
    """bf16 or fp32 from the Trainer's logged arguments (dvclive/params.yaml), None where there are none."""
    if not text:
        return None
    args = yaml.safe_load(text) or {}
    return "bf16" if args.get("bf16") else "fp16" if args.get("fp16") else "fp32"


def compare(root: Path = Path("."), rev: str = "HEAD") -> dict[str, Any]:
    """The workspace's metrics against those committed at `rev`: verdicts, moves and machine facts."""
    if _git(root, "rev-parse", "--verify", rev) is None:
        raise NoteLMError(f"{root}: {rev} is no git commit; run this in the repository after `make repro`")
    heads, result = headline_files(root), {"values": 0, "moved": [], "headline": [], "detail": [], "missing": []}
    claims = {"headline": 0, "detail": 0}
    for path in metric_files(root, rev):
        text, here = committed(root, rev, path), root / path
        if text is None or not here.is_file():
            result["missing"].append(f"{path} ({'not committed' if text is None else 'not in the workspace'})")
            continue
        old, new = flatten(json.loads(text)), flatten(json.loads(here.read_text(encoding="utf-8")))
        kind = "headline" if path in heads else "detail"
        for key, before in old.items():
            if is_claim(key, before):
                claims[kind] += 1
                if new.get(key) != before:
                    result[kind].append({"file": path, "key": key, "committed": before, "workspace": new.get(key)})
        result["values"] += sum(1 for v in old.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
        result["moved"] += moves(path, old, new)
    return {**result, "claims": claims, "rev": (_git(root, "rev-parse", "--short", rev) or rev).strip(),
            "precision": {"committed": training_precision(committed(root, rev, TRAIN_LOG)),
                          "workspace": training_precision((root / TRAIN_LOG).read_text(encoding="utf-8"))
                          if (root / TRAIN_LOG).is_file() else None}}


def largest(result: dict[str, Any], n: int = 8) -> list[dict[str, Any]]:
    """The `n` moves largest against their interval's half-width (moves without an interval left out)."""
    weighed = [m for m in result["moved"] if m["half_widths"] is not None]
    return sorted(weighed, key=lambda m: (-m["half_widths"], m["file"], m["key"]))[:n]


def _claim_line(c: dict[str, Any]) -> str:
    return f"    {c['file']} {c['key']}: {c['committed']} → {c['workspace']}"


def render(result: dict[str, Any], here: dict[str, Any]) -> str:
    """The comparison as the terminal shows it."""
    prec = result["precision"]
    lines = [f"Workspace metrics against the committed run ({result['rev']}):",
             f"  this machine: {machine.describe(here)}; train.precision auto → {here['precision_auto']}",
             f"  training precision: committed run {prec['committed'] or '?'}, this run {prec['workspace'] or '?'}"
             f" ({TRAIN_LOG})" + ("" if prec["committed"] == prec["workspace"] else
                                  " — different arithmetic, so the numbers are expected to move"),
             f"  values: {len(result['moved'])} of {result['values']} moved"]
    for kind, what in (("headline", "headline verdicts"), ("detail", "detail verdicts")):
        changed = result[kind]
        lines.append(f"  {what}: {result['claims'][kind] - len(changed)} of {result['claims'][kind]} equal"
                     + ("" if not changed else f"; {len(changed)} changed"
                        + (" (claims that depend on the machine):" if kind == "detail" else ":")))
        lines += [_claim_line(c) for c in changed]
    top = largest(result)
    if top:
        lines.append("  largest moves against the committed 95 % interval's half-width:")
        lines += [f"    {m['file']} {m['key']}: {m['committed']:.4g} → {m['workspace']:.4g} "
                  f"({m['half_widths']:.2f} half-widths)" for m in top]
    lines += [f"  not compared: {m}" for m in result["missing"]]
    verdict = ("REPRODUCED: every headline verdict holds" if not result["headline"] else
               "NOT REPRODUCED: a headline verdict changed")
    return "\n".join(lines + [verdict])


def saved(result: dict[str, Any], here: dict[str, Any], command: str) -> dict[str, Any]:
    """The comparison as a result file records it (what docs are generated from)."""
    return {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": here,
            "rev": result["rev"], "precision": result["precision"], "values": result["values"],
            "moved": len(result["moved"]), "claims": result["claims"], "headline_changed": result["headline"],
            "detail_changed": result["detail"], "largest": largest(result), "missing": result["missing"]}


def main(root: Path, rev: str, check: bool, save: str | None, command: str) -> int:
    """Print the comparison (and save it to `save`); with `check`, 1 when a headline verdict changed, else 0."""
    result, here = compare(root, rev), machine.facts()
    print(render(result, here))
    if save:
        write_json(save, saved(result, here, command))
    return 1 if check and result["headline"] else 0
