"""A grid's points: each one `dvc exp run -n <name> -S key=value ...` on the submitting commit.

A grid file is either presets (the study's form, study/grid.yaml: `<name>: {model: ..., set: {...}}`) or a
matrix, every combination of its lists one point:

    matrix:                        # key: [values]; each point sets one value of every key
      model: [smollm2, gemma3]
      train.method: [full, lora]
    set: {train.epochs: 1}         # set on every point
    name: small                    # optional: prefix of the point names (small-smollm2-full, ...)

`shared_stages` names the stages no point changes: they run once, before the points, and every point
takes their outputs from the DVC run-cache instead of recomputing them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from notelm.core.errors import NoteLMError

NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Point:
    """One experiment of a grid: its name (a DVC experiment name, a valid git ref part) and its overrides."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def sets(self) -> list[str]:
        """The `-S` arguments, `key=value` with the value in YAML flow style (as `dvc exp run -S` parses it)."""
        return [f"{key}={to_yaml(value)}" for key, value in self.overrides.items()]

    def command(self, queue: bool = False) -> list[str]:
        """`dvc exp run [--queue] -n <name> -S key=value ...`."""
        return ["dvc", "exp", "run", *(["--queue"] if queue else []), "-n", self.name,
                *(arg for s in self.sets() for arg in ("-S", s))]


def to_yaml(value: Any) -> str:
    """A value as one YAML flow scalar or collection (`0.05`, `full`, `[a, b]`)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load(path: str | Path) -> list[Point]:
    """The points of a grid file (presets or a matrix, see the module docstring); a clear error naming the file
    and the entry when one is malformed, or when two points would share a name."""
    path = Path(path)
    if not path.is_file():
        raise NoteLMError(f"grid file {path}: not found (a YAML of presets or a `matrix:`; docs/cluster.md)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise NoteLMError(f"{path}: expected a mapping (presets, or `matrix:` with `set:`), got {type(raw).__name__}")
    points = matrix(raw, path) if "matrix" in raw else [preset(name, body, path) for name, body in raw.items()]
    return unique(points, path)


def preset(name: str, body: Any, path: Path) -> Point:
    """A preset `<name>: {model: ..., set: {...}, ...}` as a point (other keys, e.g. the study's column, ignored)."""
    if not isinstance(body, dict) or not isinstance(body.get("set", {}), dict):
        raise NoteLMError(f"{path}: preset {name!r}: expected {{model: <row>, set: {{key: value}}}}, got {body!r}")
    overrides = {**({"model": body["model"]} if body.get("model") else {}), **(body.get("set") or {})}
    return Point(ref_name(str(name), path), overrides)


def matrix(raw: dict[str, Any], path: Path) -> list[Point]:
    """Every combination of `matrix:`'s lists, each with `set:`, named `<name>-<value>-<value>...`."""
    axes, fixed = raw.get("matrix"), raw.get("set") or {}
    unknown = set(raw) - {"matrix", "set", "name"}
    if unknown:
        raise NoteLMError(f"{path}: unknown keys {sorted(unknown)}; a matrix grid has `matrix:`, `set:` and `name:`")
    if not isinstance(axes, dict) or not axes or not isinstance(fixed, dict):
        raise NoteLMError(f"{path}: `matrix:` must map keys to lists of values and `set:` keys to values, "
                          "e.g. matrix: {model: [smollm2, gemma3], train.method: [full, lora]}")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise NoteLMError(f"{path}: matrix.{key}: expected a non-empty list of values, got {values!r}")
    prefix = [str(raw["name"])] if raw.get("name") else []
    points = []
    for combo in itertools.product(*axes.values()):
        name = "-".join(prefix + [to_yaml(v) for v in combo])
        points.append(Point(ref_name(name, path), {**dict(zip(axes, combo)), **fixed}))
    return points


def ref_name(name: str, path: Path) -> str:
    """`name` with every run of characters a git ref or a shell would trip on replaced by `_`."""
    clean = NAME.sub("_", name).strip("._-")
    if not clean or ".." in clean or clean.endswith(".lock"):
        raise NoteLMError(f"{path}: {name!r} cannot name an experiment (a git ref part); rename it")
    return clean


def unique(points: list[Point], path: Path) -> list[Point]:
    """`points`, refusing two with one name (their experiments would overwrite each other)."""
    seen: dict[str, Point] = {}
    for point in points:
        if point.name in seen:
            raise NoteLMError(f"{path}: two points are named {point.name!r} ({seen[point.name].overrides} and "
                              f"{point.overrides}); give them distinct names")
        seen[point.name] = point
    return points


def apply(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `params` with dotted `overrides` set, as `dvc exp run -S` would: a key must exist in params.yaml
    unless it starts with `+` or `++` (add it); a clear error naming the key otherwise."""
    out = yaml.safe_load(yaml.safe_dump(params))
    for key, value in overrides.items():
        adding = key.startswith("+")
        node = out
        *parents, leaf = key.lstrip("+").split(".")
        for part in parents:
            if part not in node and not adding:
                raise NoteLMError(f"-S {key}: params.yaml has no {part!r} there; fix the key, or add it with ++{key}")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise NoteLMError(f"-S {key}: {part} is not a section of params.yaml")
        if leaf not in node and not adding:
            raise NoteLMError(f"-S {key}: params.yaml has no such key (dvc exp run -S would refuse it); fix the key, "
                              f"or add it with ++{key}")
        node[leaf] = value
    return out


def overlaps(key: str, param: str) -> bool:
    """Whether setting `key` changes the params entry `param` (one is the other or a section of it)."""
    key = key.lstrip("+")
    return key == param or key.startswith(param + ".") or param.startswith(key + ".")


def shared_stages(points: list[Point], stages: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The stages, in `stages`' order, whose params no point changes and whose upstream stages are all shared.
    `stages`: name -> (the params entries it reads, the stages it depends on, directly or not)."""
    keys = {key for point in points for key in point.overrides}
    changed = {name for name, (params, _) in stages.items() if any(overlaps(k, p) for k in keys for p in params)}
    return [name for name, (_, upstream) in stages.items() if name not in changed and not changed & set(upstream)]


def dvc_stages(root: str | Path = ".") -> dict[str, tuple[list[str], list[str]]]:
    """Every stage of the repository's dvc.yaml in dvc.yaml's order: (params entries, upstream stages),
    read with DVC's own index so interpolation, foreach and params files resolve as `dvc repro` sees them."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # its edges point from a stage to the stages it depends on
        out = {}
        for stage in repo.index.stages:
            params = [p for dep in stage.deps if hasattr(dep, "params") for p in (dep.params or [])]
            out[stage.addressing] = (params, [s.addressing for s in nx.descendants(graph, stage)])
    return out
