"""Typed TOML tables -> dataclasses, and the one recursive merge of config tables.

:func:`merge` (``base`` updated by ``over``, nested tables key by key) is how agent configs layer
``[default]``, the env section and run-time overrides (:mod:`pbhno_gym.agents.config`).

Every value is checked against the type of its field's default (bool, int, float, str, tuple, a
table of name = number) and a bad one is refused with its dotted path (``spec.observation.
sample_prob must be a finite number``) as the caller's error class, so a bad env spec raises
``SpecError`` and a bad MPC config ``ConfigError``. Unknown fields are refused with the known ones
listed. ``sections`` maps root fields that are themselves tables to their dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

__all__ = ["coerce_field", "build_dataclass", "merge", "read_toml"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables; a missing or malformed file is refused naming the file (and the
    line and column of the syntax error), which ``tomllib`` alone does not."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: malformed TOML: {e}") from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` updated by ``over``; nested dicts merge recursively (key by key)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def coerce_field(
    cls, name: str, value: Any, where: str, error: type[Exception], floats: Collection[str] = ()
) -> Any:
    """``value`` checked (and ints widened to float) against field ``name`` of ``cls``; ``floats``
    names fields that are numbers although their default is None."""
    f = {f.name: f for f in fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        proto = f.default
    elif f.default_factory is not dataclasses.MISSING:
        proto = f.default_factory()
    else:
        proto = None
    if name in floats or isinstance(proto, float):
        if not _finite(value):
            raise error(f"{where}.{name} must be a finite number, got {value!r}")
        return float(value)
    if isinstance(proto, bool):
        if not isinstance(value, bool):
            raise error(f"{where}.{name} must be true or false, got {value!r}")
        return value
    if isinstance(proto, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise error(f"{where}.{name} must be an integer, got {value!r}")
        return value
    if isinstance(proto, str):
        if not isinstance(value, str):
            raise error(f"{where}.{name} must be a string, got {value!r}")
        return value
    if isinstance(proto, tuple):
        if not isinstance(value, (list, tuple)):
            raise error(f"{where}.{name} must be a list, got {value!r}")
        return tuple(value)
    if isinstance(proto, dict):
        if not isinstance(value, dict):
            raise error(f"{where}.{name} must be a table of name = number, got {value!r}")
        out = {}
        for k, v in value.items():
            if not _finite(v):
                raise error(f"{where}.{name}.{k} must be a finite number, got {v!r}")
            out[str(k)] = float(v)
        return out
    return value


def build_dataclass(
    cls,
    raw: Mapping[str, Any],
    where: str,
    error: type[Exception],
    sections: Mapping[str, type] | None = None,
    floats: Collection[str] = (),
):
    """``cls(**raw)`` with every field checked; ``sections`` (root only) are built recursively."""
    sections = sections or {}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(
            f"unknown field(s) {', '.join(where + '.' + u for u in unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    kw = {}
    for k, v in raw.items():
        if k in sections:
            if not isinstance(v, dict):
                raise error(f"{where}.{k} must be a table, got {v!r}")
            kw[k] = build_dataclass(sections[k], v, f"{where}.{k}", error, floats=floats)
        else:
            kw[k] = coerce_field(cls, k, v, where, error, floats)
    return cls(**kw)
