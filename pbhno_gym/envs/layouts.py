"""The layout registry: ``layout.kind`` -> builder of the :class:`CellLayout` from a layout spec.

Adding a layout kind is one :func:`register_layout` call; spec validation accepts every
registered kind and lists them when a spec names an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..physics.geometry import CellLayout, Grid, lattice, no_field, two_cell, wnt_tissue

if TYPE_CHECKING:
    from .spec import LayoutSpec

__all__ = ["LAYOUTS", "LayoutBuilder", "available_layouts", "get_layout", "register_layout"]

LayoutBuilder = Callable[["LayoutSpec"], CellLayout]

LAYOUTS: dict[str, LayoutBuilder] = {}
"""The registry, kind -> builder; add to it with :func:`register_layout`."""


def register_layout(kind: str, builder: LayoutBuilder, *, overwrite: bool = False) -> LayoutBuilder:
    """Register ``builder`` (layout spec -> CellLayout) as ``layout.kind = kind``."""
    if kind in LAYOUTS and not overwrite and LAYOUTS[kind] is not builder:
        raise ValueError(f"layout kind {kind!r} is already registered (pass overwrite=True to replace it)")
    LAYOUTS[kind] = builder
    return builder


def available_layouts() -> list[str]:
    """The registered layout kinds."""
    return list(LAYOUTS)


def get_layout(kind: str) -> LayoutBuilder:
    """The builder of a registered layout kind (the error names the field and the known kinds)."""
    if kind not in LAYOUTS:
        raise ValueError(f"spec.layout.kind must be one of {', '.join(LAYOUTS)}, got {kind!r}")
    return LAYOUTS[kind]


def _grid(ls: LayoutSpec) -> Grid:
    return Grid(ls.ny, ls.nx, ls.length_x)


register_layout("none", lambda ls: no_field(ls.n_cells))
register_layout(
    "two_cell",
    lambda ls: two_cell(_grid(ls), ls.cell_size, ls.gap, "halves" if ls.sources == "default" else ls.sources),
)
register_layout(
    "lattice",
    lambda ls: lattice(
        _grid(ls),
        ls.rows,
        ls.cols,
        ls.cell_size,
        ls.gap,
        "per_cell" if ls.sources == "default" else ls.sources,
    ),
)
register_layout(
    "wnt_tissue",
    lambda ls: wnt_tissue(_grid(ls), ls.rows, ls.cols, ls.cell_size, ls.gap, ls.source_width),
)
