"""`notelm params`: every knob of params.yaml with its default, its value in the params file and its meaning,
all read from the section dataclasses (the one source of defaults and documentation)."""

from __future__ import annotations

import dataclasses
from typing import Any

from notelm.config.sections import SECTIONS
from notelm.core.errors import ParamsError
from notelm.core.loader import field_docs

UNSET = object()


def default_of(f: dataclasses.Field) -> Any:
    """A dataclass field's default value (its factory's product for list and dict defaults)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def knob_rows(params: dict[str, Any], section: str) -> list[tuple[str, Any, Any, str]]:
    """(key, default, value in params or UNSET, doc) for every field of `section`."""
    cls = SECTIONS[section]
    given, docs = params.get(section) or {}, field_docs(cls)
    return [(f"{section}.{f.name}", default_of(f), given.get(f.name, UNSET), docs.get(f.name, ""))
            for f in dataclasses.fields(cls)]


def knobs_text(params: dict[str, Any], section: str | None = None) -> str:
    """The knobs of one section (or all) as plain text: `key = value` (and the default where it differs),
    then the meaning indented below."""
    if section is not None and section not in SECTIONS:
        raise ParamsError(f"no params section {section!r}; sections: {', '.join(SECTIONS)}")
    lines = []
    for name in [section] if section else list(SECTIONS):
        for key, default, value, doc in knob_rows(params, name):
            shown = default if value is UNSET else value
            note = "" if value is UNSET or value == default else f"   (default: {default!r})"
            lines += [f"{key} = {shown!r}{note}", f"    {doc}"]
    return "\n".join(lines) + "\n"
