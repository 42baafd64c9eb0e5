"""Tissue geometry: the 2D grid, cell layouts, membrane masks and coupling operators.

Units: lengths in micrometres (um). The grid is cell-centred: pixel ``(r, c)`` covers
``[c*h, (c+1)*h) x [r*h, (r+1)*h)`` and its value is the ligand concentration at its centre.
The outer boundary is zero-flux (eq. 2 of the paper, Neumann), which the transport scheme
imposes by mirror symmetry about the domain edge.

The ligand field lives on the whole grid (a 2D projection of the interstitial space and the
medium over a monolayer, the usual picture for morphogen and juxtacrine models); each cell is a
rectangular footprint whose boundary ring of pixels is its membrane Gamma_i. Cells interact with
the field only on Gamma_i:

* ``A_geom`` (N, H*W): ell_i = mean of L over Gamma_i (eq. 3), rows sum to 1.
* ``membrane`` (N, H*W): the indicator 1_Gamma_i, which paints per-cell fluxes back onto the grid
  (the membrane flux operator of eq. 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Grid", "CellLayout", "two_cell", "lattice", "wnt_tissue", "no_field"]


@dataclass(frozen=True)
class Grid:
    """A uniform cell-centred grid of ``ny x nx`` square pixels of side ``h`` um."""

    ny: int = 64
    nx: int = 64
    length_x: float = 128.0  # um, physical width of the domain

    def __post_init__(self) -> None:
        for name in ("ny", "nx"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 4:
                raise ValueError(f"Grid.{name} must be an integer >= 4, got {v!r}")
        if not (self.length_x > 0):
            raise ValueError(f"Grid.length_x must be > 0 um, got {self.length_x!r}")

    @property
    def h(self) -> float:
        """Pixel side in um."""
        return self.length_x / self.nx

    @property
    def length_y(self) -> float:
        return self.h * self.ny

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def pixel_area(self) -> float:
        return self.h * self.h

    def x_centres(self) -> Tensor:
        """Pixel-centre x coordinates (nx,) in um."""
        return (torch.arange(self.nx, dtype=torch.float64) + 0.5) * self.h

    def y_centres(self) -> Tensor:
        return (torch.arange(self.ny, dtype=torch.float64) + 0.5) * self.h


@dataclass
class CellLayout:
    """Cells on a grid: footprints, membranes, interiors, ligand source regions, operators.

    Attributes:
        grid: the grid, or ``None`` for ODE-only pathways (MAPK) with no ligand field.
        footprints: (N, H, W) bool, the pixels each cell occupies.
        source_masks: (K, H, W) float, where each ligand-pulse channel k delivers ligand.
        source_names: names of the K source regions (used to name action channels).
        kind: layout family ("two_cell", "lattice", "wnt_tissue", "none").
        shape: (rows, cols) of the cell arrangement.
    """

    grid: Grid | None
    footprints: Tensor
    source_masks: Tensor
    source_names: tuple[str, ...]
    kind: str
    shape: tuple[int, int]
    n_cells_no_field: int = 1
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.grid is None:
            return
        fp = self.footprints
        if fp.ndim != 3 or fp.shape[1:] != self.grid.shape:
            raise ValueError(
                f"CellLayout.footprints must have shape (N, {self.grid.ny}, {self.grid.nx}), "
                f"got {tuple(fp.shape)}"
            )
        if fp.shape[0] == 0:
            raise ValueError("CellLayout.footprints: the layout has no cells")
        fp = fp.bool()
        self.footprints = fp
        sizes = fp.flatten(1).sum(1)
        empty = (sizes == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"CellLayout.footprints: cell(s) {empty} are empty (no pixels)")
        overlap = fp.sum(0) > 1
        if overlap.any():
            r, c = overlap.nonzero()[0].tolist()
            owners = fp[:, r, c].nonzero().flatten().tolist()
            raise ValueError(f"CellLayout.footprints: cells {owners} overlap at pixel (row={r}, col={c})")
        sm = self.source_masks
        if sm.ndim != 3 or sm.shape[1:] != self.grid.shape:
            raise ValueError(
                f"CellLayout.source_masks must have shape (K, {self.grid.ny}, {self.grid.nx}), "
                f"got {tuple(sm.shape)}"
            )
        if len(self.source_names) != sm.shape[0]:
            raise ValueError(
                "CellLayout.source_names must name every source mask: "
                f"{len(self.source_names)} names for {sm.shape[0]} masks"
            )
        if (sm < 0).any():
            raise ValueError("CellLayout.source_masks must be non-negative")
        self.source_masks = sm.to(torch.float64)

    # ------------------------------------------------------------------ masks
    @property
    def n_cells(self) -> int:
        return self.n_cells_no_field if self.grid is None else int(self.footprints.shape[0])

    @property
    def n_sources(self) -> int:
        return 0 if self.grid is None else int(self.source_masks.shape[0])

    @property
    def membranes(self) -> Tensor:
        """(N, H, W) bool: footprint pixels with a 4-neighbour outside the cell (Gamma_i)."""
        if "membranes" not in self._cache:
            fp = self.footprints
            pad = torch.nn.functional.pad(fp.float()[:, None], (1, 1, 1, 1), value=0.0)[:, 0]
            inner = (
                (pad[:, :-2, 1:-1] > 0)
                & (pad[:, 2:, 1:-1] > 0)
                & (pad[:, 1:-1, :-2] > 0)
                & (pad[:, 1:-1, 2:] > 0)
            )
            self._cache["membranes"] = fp & ~inner
        return self._cache["membranes"]

    @property
    def interiors(self) -> Tensor:
        """(N, H, W) bool: footprint minus membrane."""
        return self.footprints & ~self.membranes

    def membrane_operator(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """Dense membrane indicator (N, H*W): paints per-cell values onto Gamma_i."""
        return self.membranes.flatten(1).to(dtype=dtype, device=device)

    def averaging_operator(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """Dense A_geom (N, H*W): row i averages a field over Gamma_i (rows sum to 1)."""
        m = self.membranes.flatten(1).to(torch.float64)
        return (m / m.sum(1, keepdim=True)).to(dtype=dtype, device=device)

    def averaging_operator_sparse(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """A_geom as a sparse COO tensor, for large lattices."""
        return self.averaging_operator(dtype, device).to_sparse()

    def centres(self) -> Tensor:
        """(N, 2) cell centroids (x, y) in um."""
        g = self.grid
        assert g is not None
        fp = self.footprints.to(torch.float64)
        w = fp.flatten(1).sum(1)
        cx = (fp.sum(1) * g.x_centres()).sum(1) / w
        cy = (fp.sum(2) * g.y_centres()).sum(1) / w
        return torch.stack([cx, cy], 1)

    def membrane_sizes(self) -> Tensor:
        """(N,) number of membrane pixels |Gamma_i|."""
        return self.membranes.flatten(1).sum(1)


# ---------------------------------------------------------------------------- factories
def _rect(grid: Grid, r0: int, r1: int, c0: int, c1: int) -> Tensor:
    m = torch.zeros(grid.shape, dtype=torch.bool)
    m[r0:r1, c0:c1] = True
    return m


def _px(grid: Grid, um: float, name: str) -> int:
    n = int(round(um / grid.h))
    if n < 0:
        raise ValueError(f"{name} must be >= 0 um, got {um}")
    return n


def _tile(
    grid: Grid, rows: int, cols: int, cell_px: int, gap_px: int, c_start: int, width_px: int
) -> list[Tensor]:
    """Rectangular cells of ``cell_px`` with ``gap_px`` gaps, centred in a column band."""
    if rows < 1 or cols < 1:
        raise ValueError(f"layout shape must be >= 1 x 1, got {rows} x {cols}")
    if cell_px < 3:
        raise ValueError(
            f"cell_size is {cell_px} px at h={grid.h:g} um: cells need >= 3 px per side to have an interior"
        )
    tot_w = cols * cell_px + (cols - 1) * gap_px
    tot_h = rows * cell_px + (rows - 1) * gap_px
    if tot_w > width_px or tot_h > grid.ny:
        raise ValueError(
            f"cells do not fit: a {rows} x {cols} layout of {cell_px} px cells with {gap_px} px "
            f"gaps needs {tot_h} x {tot_w} px but the grid offers {grid.ny} x {width_px}"
        )
    r_off = (grid.ny - tot_h) // 2
    c_off = c_start + (width_px - tot_w) // 2
    cells = []
    for i in range(rows):
        for j in range(cols):
            r0 = r_off + i * (cell_px + gap_px)
            c0 = c_off + j * (cell_px + gap_px)
            cells.append(_rect(grid, r0, r0 + cell_px, c0, c0 + cell_px))
    return cells


def two_cell(
    grid: Grid | None = None, cell_size: float = 36.0, gap: float = 4.0, sources: str = "halves"
) -> CellLayout:
    """Two square cells side by side (the Notch two-cell system).

    Args:
        cell_size: side of each cell in um.
        gap: intercellular cleft in um.
        sources: ligand delivery regions: "halves" (left/right half of the dish, one channel
            each, so a pulse can favour one cell) or "uniform" (one bath channel).
    """
    grid = grid or Grid()
    cells = _tile(grid, 1, 2, _px(grid, cell_size, "cell_size"), _px(grid, gap, "gap"), 0, grid.nx)
    if sources == "halves":
        left = _rect(grid, 0, grid.ny, 0, grid.nx // 2).double()
        src, names = torch.stack([left, 1.0 - left]), ("left", "right")
    elif sources == "uniform":
        src, names = torch.ones((1, *grid.shape), dtype=torch.float64), ("bath",)
    else:
        raise ValueError(f"two_cell: sources must be 'halves' or 'uniform', got {sources!r}")
    return CellLayout(grid, torch.stack(cells), src, names, "two_cell", (1, 2))


def lattice(
    grid: Grid | None = None,
    rows: int = 4,
    cols: int = 4,
    cell_size: float = 24.0,
    gap: float = 4.0,
    sources: str = "per_cell",
) -> CellLayout:
    """A mosaic epithelial lattice of rows x cols square cells.

    Args:
        sources: "per_cell" (patterned, e.g. optogenetic, ligand release over each cell's
            footprint: one channel per cell) or "uniform" (one bath channel).
    """
    grid = grid or Grid()
    cells = _tile(grid, rows, cols, _px(grid, cell_size, "cell_size"), _px(grid, gap, "gap"), 0, grid.nx)
    fp = torch.stack(cells)
    if sources == "per_cell":
        src = fp.double()
        names = tuple(f"cell{r}_{c}" for r in range(rows) for c in range(cols))
    elif sources == "uniform":
        src, names = torch.ones((1, *grid.shape), dtype=torch.float64), ("bath",)
    else:
        raise ValueError(f"lattice: sources must be 'per_cell' or 'uniform', got {sources!r}")
    return CellLayout(grid, fp, src, names, "lattice", (rows, cols))


def wnt_tissue(
    grid: Grid | None = None,
    rows: int = 4,
    cols: int = 4,
    cell_size: float = 20.0,
    gap: float = 4.0,
    source_width: float = 16.0,
) -> CellLayout:
    """A morphogen field: a source strip at the left edge and a field of responding cells.

    Args:
        source_width: width in um of the secreting domain at x < source_width.
    """
    grid = grid or Grid()
    sw = _px(grid, source_width, "source_width")
    if sw < 1 or sw >= grid.nx - 3:
        raise ValueError(f"wnt_tissue: source_width={source_width} um leaves no room for cells")
    margin = sw + max(1, _px(grid, gap, "gap"))
    cells = _tile(
        grid, rows, cols, _px(grid, cell_size, "cell_size"), _px(grid, gap, "gap"), margin, grid.nx - margin
    )
    src = _rect(grid, 0, grid.ny, 0, sw).double()[None]
    return CellLayout(grid, torch.stack(cells), src, ("source",), "wnt_tissue", (rows, cols))


def no_field(n_cells: int = 1) -> CellLayout:
    """Layout for ODE-only pathways (MAPK): independent well-mixed cells, no grid."""
    if n_cells < 1:
        raise ValueError(f"no_field: n_cells must be >= 1, got {n_cells}")
    return CellLayout(
        None, torch.zeros(0), torch.zeros(0), (), "none", (1, n_cells), n_cells_no_field=n_cells
    )
