"""The strict params loader every stage uses: read params.yaml, build a section's dataclass from it, and refuse
unknown keys, wrong types and values outside a field's `Literal` choices with a message naming the key.

Every stage imports this module, so it holds only the loading rules; the sections live in their own modules
(config/<section>.py), each a frozen dataclass whose `section` names its key in params.yaml and whose fields
carry their documentation as attribute docstrings (litgpt's style), read back by `field_docs`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from notelm.core.errors import ParamsError
from notelm.core.paths import PARAMS_FILE

T = TypeVar("T")


def bad(section: str, key: str, why: str, where: str = PARAMS_FILE) -> ParamsError:
    """The error for key `section.key` of the file `where` (params.yaml), saying `why`."""
    return ParamsError(f"{where}: {section}.{key}: {why}")


def at_least(obj: Any, section: str, lowest: int | float, *keys: str, where: str = PARAMS_FILE) -> None:
    """Raise naming the first of `keys` whose value (not None) is below `lowest`."""
    for key in keys:
        value = getattr(obj, key)
        if value is not None and value < lowest:
            raise bad(section, key, f"must be >= {lowest}, got {value}", where)


def read_yaml_mapping(path: str | Path, missing: str) -> dict[str, Any]:
    """The YAML mapping in `path`; a ParamsError naming the file when it is absent (saying `missing`) or no mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: {missing}")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read `params.yaml` as a dict; a clear error if it is missing or not a mapping."""
    return read_yaml_mapping(path, "params file not found (run from the repository root or pass --params)")


def _check_union(value: Any, args: tuple, hint: Any, key: str) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is not type(None):
            try:
                return check_type(value, arg, key)
            except ParamsError:
                continue
    raise ParamsError(f"{key}: {value!r} matches none of {hint}")


def check_type(value: Any, hint: Any, key: str) -> Any:
    """Coerce `value` to the field type `hint` where that is lossless; raise ParamsError otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, args, hint, key)
    if origin is Literal:
        if value not in args or isinstance(value, bool) != isinstance(args[0], bool):
            raise ParamsError(f"{key}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    expected = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    if hint in expected:
        ok = isinstance(value, (int, float)) if hint is float else isinstance(value, hint)
        if not ok or (hint in (int, float) and isinstance(value, bool)):
            raise ParamsError(f"{key}: expected {expected[hint]}, got {value!r}")
        return float(value) if hint is float else value
    return value


def from_mapping(cls: type[T], raw: dict[str, Any] | None, name: str, where: str = PARAMS_FILE) -> T:
    """Build dataclass `cls` from mapping `raw`; `where: name` (e.g. `params.yaml: train`) prefixes keys in errors."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: `{name}` must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
                          f"`{name}` accepts: {', '.join(sorted(known))}")
    kwargs = {k: check_type(v, hints[k], f"{where}: {name}.{k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParamsError(f"{where}: `{name}`: {exc}") from exc


def load_section(cls: type[T], params: dict[str, Any]) -> T:
    """Build the section `cls.section` of `params` as `cls` (a missing section gives the defaults)."""
    return from_mapping(cls, params.get(cls.section), cls.section)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its attribute docstring (the string right below the field), for every documented field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs
