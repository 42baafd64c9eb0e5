"""Geometry: masks, operators and layout validation."""

import pytest
import torch

from pbhno_gym.physics import CellLayout, Grid, lattice, no_field, two_cell, wnt_tissue


def test_grid_units_and_validation():
    g = Grid(64, 64, 128.0)
    assert g.h == pytest.approx(2.0)
    assert g.length_y == pytest.approx(128.0)
    assert torch.allclose(g.x_centres()[:2], torch.tensor([1.0, 3.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="Grid.nx"):
        Grid(64, 2, 128.0)
    with pytest.raises(ValueError, match="Grid.length_x"):
        Grid(64, 64, -1.0)


@pytest.mark.parametrize("layout", [two_cell(), lattice(rows=3, cols=4), wnt_tissue()], ids=lambda l: l.kind)
def test_membrane_is_boundary_ring(layout):
    fp, memb, inner = layout.footprints, layout.membranes, layout.interiors
    # every cell is a square of side s: its ring has 4(s-1) pixels, its interior (s-2)^2
    side = fp[0].any(0).sum().item()
    assert (layout.membrane_sizes() == 4 * (side - 1)).all()
    assert (inner.flatten(1).sum(1) == (side - 2) ** 2).all()
    assert not (memb & inner).any()
    assert torch.equal(memb | inner, fp)


def test_operators_average_and_paint():
    lay = lattice(rows=2, cols=3)
    A = lay.averaging_operator(torch.float64)
    M = lay.membrane_operator(torch.float64)
    assert torch.allclose(A.sum(1), torch.ones(6, dtype=torch.float64))
    # averaging a field equal to the cell index on its own membrane returns the index
    field = (torch.arange(6, dtype=torch.float64) + 1.0) @ M
    assert torch.allclose(A @ field, torch.arange(6, dtype=torch.float64) + 1.0)
    sparse = lay.averaging_operator_sparse(torch.float64)
    assert torch.allclose(sparse.to_dense(), A)


def test_layout_sources_and_centres():
    lay = two_cell(sources="halves")
    assert lay.source_names == ("left", "right")
    assert torch.allclose(lay.source_masks.sum(0), torch.ones(64, 64, dtype=torch.float64))
    c = lay.centres()
    assert c[0, 0] < 64.0 < c[1, 0]  # left cell, right cell (um)
    assert lattice(rows=2, cols=2).n_sources == 4
    assert wnt_tissue().source_masks[0, :, 0].all() and not wnt_tissue().source_masks[0, :, -1].any()
    assert no_field(3).n_cells == 3 and no_field().grid is None


def test_invalid_layouts_name_the_problem():
    g = Grid(16, 16, 32.0)
    fp = torch.zeros(2, 16, 16, dtype=torch.bool)
    fp[0, 2:6, 2:6] = True
    with pytest.raises(ValueError, match=r"cell\(s\) \[1\] are empty"):
        CellLayout(g, fp, torch.ones(1, 16, 16), ("bath",), "custom", (1, 2))
    fp[1, 4:8, 4:8] = True
    with pytest.raises(ValueError, match="cells \\[0, 1\\] overlap at pixel"):
        CellLayout(g, fp, torch.ones(1, 16, 16), ("bath",), "custom", (1, 2))
    with pytest.raises(ValueError, match="source_names"):
        CellLayout(g, fp[:1], torch.ones(2, 16, 16), ("bath",), "custom", (1, 1))
    with pytest.raises(ValueError, match="cells do not fit"):
        lattice(Grid(16, 16, 32.0), rows=8, cols=8)
    with pytest.raises(ValueError, match="at least|>= 3 px"):
        lattice(rows=2, cols=2, cell_size=2.0)
    with pytest.raises(ValueError, match="sources must be"):
        two_cell(sources="nowhere")
