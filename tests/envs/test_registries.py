"""Layout and target kinds are registries: unknown kinds are named with the known ones, and a
new kind is one registration away from a working environment."""

import pytest
import torch

from pbhno_gym.envs import SpecError, load_spec
from pbhno_gym.envs.factory import build_layout
from pbhno_gym.envs.layouts import LAYOUTS, available_layouts, get_layout, register_layout
from pbhno_gym.envs.pathway_env import PathwayEnv
from pbhno_gym.envs.targets import TARGETS, CellIndex, PatternTarget, available_targets, register_target
from pbhno_gym.physics.geometry import no_field


def test_unknown_layout_kind_names_the_field_and_lists_the_registered_kinds():
    with pytest.raises(SpecError, match=r"spec\.layout\.kind must be one of .*, got 'hexagon'") as e:
        load_spec("pbhno/Wnt-v1", {"layout": {"kind": "hexagon"}})
    assert all(k in str(e.value) for k in ("two_cell", "lattice", "wnt_tissue", "none"))
    with pytest.raises(ValueError, match=r"spec\.layout\.kind must be one of .*wnt_tissue"):
        get_layout("hexagon")


def test_unknown_target_kind_names_the_field_and_lists_the_registered_kinds():
    with pytest.raises(SpecError, match=r"spec\.target\.kind must be one of .*, got 'stripes'") as e:
        load_spec("pbhno/MAPK-v0", {"target": {"kind": "stripes"}})
    assert set(available_targets()) <= set(str(e.value).replace(",", " ").split())


def test_registering_a_layout_kind_makes_it_valid_and_buildable():
    register_layout("three_cells", lambda ls: no_field(3))
    try:
        assert "three_cells" in available_layouts()
        spec = load_spec("pbhno/MAPK-v0", {"layout": {"kind": "three_cells"}})
        assert build_layout(spec.layout).n_cells == 3
        with pytest.raises(ValueError, match="already registered"):
            register_layout("three_cells", lambda ls: no_field(4))
    finally:
        LAYOUTS.pop("three_cells")


def test_registering_a_target_kind_makes_it_usable_in_an_env():
    def every_cell(k: int, cells: CellIndex) -> torch.Tensor:
        return torch.full((cells.n_cells,), bool(k))

    register_target("all_or_none", PatternTarget(every_cell, "every cell {k}"))
    try:
        env = PathwayEnv("pbhno/MAPK-v0", target={"kind": "all_or_none", "choices": [1]}, horizon=2)
        _, info = env.reset(seed=0)
        assert info["target"] == "every cell 1"
        _, _, _, _, info = env.step(env.action_space.sample())
        assert "is_success" in info
    finally:
        TARGETS.pop("all_or_none")
