"""Pathways (base, mapk, notch, wnt), their registry (:mod:`.registry`) and mechanisms."""

from __future__ import annotations

from .base import Pathway, hill
from .mapk import MAPK
from .mechanisms import MECHANISMS, Mechanism, get_mechanism, with_mechanisms
from .notch import Notch
from .registry import PATHWAYS, get_pathway
from .wnt import Wnt

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
