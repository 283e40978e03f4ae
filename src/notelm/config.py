"""Loading `params.yaml` into one typed config object per stage.

Each stage module defines a frozen dataclass for its own section of
`params.yaml` and builds it with :func:`load_section`, which rejects unknown
keys and wrong types with a message naming the key, so a typo in
`params.yaml` or in `dvc exp run -S ...` fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

PARAMS_FILE = "params.yaml"

T = TypeVar("T")


class NoteLMError(Exception):
    """An error the user can fix (bad input, bad param, missing weights): the CLI prints it and exits 1."""


class ParamsError(NoteLMError, ValueError):
    """A parameter in params.yaml is missing, unknown or of the wrong type."""


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read `params.yaml` and return it as a dict; a clear error if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run from the repository root or pass --params)")
    with path.open(encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a YAML mapping at the top level, got {type(params).__name__}")
    return params


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """Coerce `value` to the field type `hint` where that is lossless; raise ParamsError otherwise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(f"{key}: {value!r} matches none of {hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], raw: dict[str, Any] | None, name: str) -> T:
    """Build dataclass `cls` from mapping `raw`; `name` prefixes keys in error messages."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: `{name}` must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"params.yaml: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
            f"`{name}` accepts: {', '.join(sorted(known))}"
        )
    kwargs = {k: _check_type(v, hints[k], f"params.yaml: {name}.{k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParamsError(f"params.yaml: `{name}`: {exc}") from exc


def load_section(cls: type[T], params: dict[str, Any], name: str) -> T:
    """Build the stage config `cls` from section `name` of `params` (missing section → defaults)."""
    return from_mapping(cls, params.get(name), name)
