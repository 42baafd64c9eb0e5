"""Pathway registry: name -> Pathway factory (imported by the package and by the mechanisms,
which build a pathway to resolve a candidate mechanism's reaction and species names)."""

from __future__ import annotations

from .base import Pathway
from .mapk import MAPK
from .notch import Notch
from .wnt import Wnt

__all__ = ["PATHWAYS", "get_pathway"]

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
