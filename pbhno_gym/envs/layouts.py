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

LAYOUT_FIELDS: dict[str, frozenset[str]] = {}
"""Layout-spec fields each kind reads (kinds registered without ``fields`` are not checked)."""


def register_layout(
    kind: str,
    builder: LayoutBuilder,
    *,
    overwrite: bool = False,
    fields: tuple[str, ...] | None = None,
) -> LayoutBuilder:
    """Register ``builder`` (layout spec -> CellLayout) as ``layout.kind = kind``; ``fields``
    lists the layout-spec fields it reads, so a non-default value of any other is refused."""
    if kind in LAYOUTS and not overwrite and LAYOUTS[kind] is not builder:
        raise ValueError(f"layout kind {kind!r} is already registered (pass overwrite=True to replace it)")
    LAYOUTS[kind] = builder
    if fields is not None:
        LAYOUT_FIELDS[kind] = frozenset(fields)
    return builder


def unused_layout_fields(ls: LayoutSpec) -> list[str]:
    """Fields set to a non-default value that layout ``ls.kind`` ignores (a likely user error)."""
    from dataclasses import fields as dc_fields

    used = LAYOUT_FIELDS.get(ls.kind)
    if used is None:
        return []
    return [
        f.name
        for f in dc_fields(ls)
        if f.name != "kind" and f.name not in used and getattr(ls, f.name) != f.default
    ]


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


_GRID = ("ny", "nx", "length_x")
register_layout("none", lambda ls: no_field(ls.n_cells), fields=("n_cells",))
register_layout(
    "two_cell",
    lambda ls: two_cell(_grid(ls), ls.cell_size, ls.gap, "halves" if ls.sources == "default" else ls.sources),
    fields=(*_GRID, "cell_size", "gap", "sources"),
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
    fields=(*_GRID, "rows", "cols", "cell_size", "gap", "sources"),
)
register_layout(
    "wnt_tissue",
    lambda ls: wnt_tissue(_grid(ls), ls.rows, ls.cols, ls.cell_size, ls.gap, ls.source_width),
    fields=(*_GRID, "rows", "cols", "cell_size", "gap", "source_width"),
)
