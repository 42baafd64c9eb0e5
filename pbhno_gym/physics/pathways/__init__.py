"""Pathway registry: name -> Pathway factory."""

from __future__ import annotations

from .base import Pathway, hill
from .mapk import MAPK
from .mechanisms import MECHANISMS, Mechanism, get_mechanism, with_mechanisms
from .notch import Notch
from .wnt import Wnt

PATHWAYS = {
    "notch": Notch,
    "wnt": Wnt,
    "mapk": MAPK,
    "mapk_feedback": lambda: MAPK(feedback=True),
}


def get_pathway(name: str) -> Pathway:
    """Instantiate a pathway by name ("notch", "wnt", "mapk", "mapk_feedback")."""
    try:
        return PATHWAYS[name]()
    except KeyError:
        raise ValueError(f"unknown pathway {name!r}; known: {', '.join(PATHWAYS)}") from None


__all__ = [
    "Pathway",
    "hill",
    "MAPK",
    "Notch",
    "Wnt",
    "PATHWAYS",
    "get_pathway",
    "MECHANISMS",
    "Mechanism",
    "get_mechanism",
    "with_mechanisms",
]
