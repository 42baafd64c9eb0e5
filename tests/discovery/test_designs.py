"""The design catalogue is a registry: names resolve, unknown ones list the known, new ones register."""

import pytest

from pbhno_gym.discovery import DESIGNS, available_designs, get_design, register_design
from pbhno_gym.discovery.design import make_dataset


def test_catalogue_has_the_named_designs():
    names = available_designs()
    for n in ("notch_sparse", "notch_rich", "wnt_edges", "wnt_tiny", "mapk_tiny", "mapk_smooth"):
        assert n in names and get_design(n).name == n
    assert get_design("notch_rich").free == get_design("notch_sparse").free
    assert get_design("mapk_tiny", noise=0.1).noise == 0.1 and get_design("mapk_tiny").noise == 0.02


def test_unknown_design_names_the_field_and_lists_the_known():
    with pytest.raises(ValueError, match=r"unknown design 'notch_spares'; known designs: .*notch_sparse"):
        get_design("notch_spares")


def test_registering_a_design_makes_it_available_by_name():
    d = get_design("mapk_smooth").replace(name="mapk_smooth_one", n_traj=1, description="one trajectory")
    register_design(d)
    try:
        assert "mapk_smooth_one" in available_designs() and get_design("mapk_smooth_one") is d
        ds = make_dataset("mapk_smooth_one", 0)
        assert ds["meas_mask"].shape[0] == 1 and ds.meta["design"]["name"] == "mapk_smooth_one"
        with pytest.raises(ValueError, match="already registered"):
            register_design(d.replace(noise=0.5))
        register_design(d.replace(noise=0.5), overwrite=True)
        assert get_design("mapk_smooth_one").noise == 0.5
    finally:
        DESIGNS.pop("mapk_smooth_one")
