"""argparse ``type=`` checkers: a bad value is refused at parse time, and argparse's message
names the option (``argument --episodes: must be an integer >= 1, got '0'``)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["fraction", "int_at_least", "json_object", "number", "positive_params"]


def int_at_least(lo: int) -> Callable[[str], int]:
    """An integer >= ``lo``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {v}")
        return v

    parse.__name__ = f"int>={lo}"
    return parse


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Callable[[str], float]:
    """A finite float in [lo, hi] (``lo_open``: (lo, hi])."""
    lo_text = "-inf" if lo is None else f"{lo:g}"
    rng = f"{'(' if lo_open else '['}{lo_text}, {'inf' if hi is None else f'{hi:g}'}]"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {rng}, got {text!r}") from None
        ok = math.isfinite(v) and (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or v <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number in {rng}, got {text}")
        return v

    parse.__name__ = f"number{rng}"
    return parse


fraction = number(0.0, 1.0)
"""A float in [0, 1]."""


def json_object(text: str) -> dict[str, Any]:
    """A JSON object (``'{"horizon": 24}'``)."""
    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"invalid JSON ({e.msg} at column {e.colno}): {text!r}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object ({{...}}), got {text!r}")
    return v


def positive_params(text: str) -> dict[str, float]:
    """A JSON object of parameter name -> positive number (natural units)."""
    v = json_object(text)
    for k, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
            raise argparse.ArgumentTypeError(f"parameter {k!r} must be a positive number, got {x!r}")
    return {k: float(x) for k, x in v.items()}
