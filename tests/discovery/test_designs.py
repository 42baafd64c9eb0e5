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


def test_model_error_design_generates_from_the_world_and_hands_out_the_skeleton():
    """mapk_feedback: data from MAPK + ERK feedback, meta and skeleton the plain cascade, same units."""
    import numpy as np
    import torch

    from pbhno_gym.discovery.design import design_model
    from pbhno_gym.discovery.problem import SimulatorProblem

    d = get_design("mapk_feedback")
    assert d.hidden == ("erk_feedback",) and "K_fb" not in d.free
    ds = make_dataset(d, 0)
    assert ds.meta["param_names"] == ["k1", "k2", "k3", "k4", "k5", "k6", "IC50_mek"]
    assert ds["log_theta"].shape[1] == 7 and ds.meta["true_param_names"][-1] == "K_fb"
    assert np.isclose(np.exp(ds.meta["true_log_theta"][-1]), 0.3)
    world, skel = design_model(d), design_model(d.skeleton())
    assert world.pathway.name == "mapk+erk_feedback" and skel.pathway.name == "mapk"
    assert np.allclose(world.scales()[0], skel.scales()[0])  # both measure in the skeleton's units
    truth = np.asarray(ds.meta["true_log_theta"])[:6]
    gen = SimulatorProblem(ds, d.free, jac_mode="fd")
    mis = SimulatorProblem(ds, d.free, jac_mode="fd", skeleton=True)
    # at the truth the generator fits the data to the noise; the skeleton does not
    r_gen = gen.residuals(truth)[0]
    r_mis = mis.residuals(truth)[0]
    assert (r_gen**2).mean() < 1.5 and (r_mis**2).mean() > 5 * (r_gen**2).mean()
    lt = torch.as_tensor(ds.meta["true_log_theta"])[None]
    xs, _ = world.simulate(lt, torch.as_tensor(ds["actions"][:1], dtype=torch.float64))
    assert np.allclose(world.channels(xs, None)[0].numpy(), ds["x"][0, :, 0] / world.scales()[0], atol=1e-5)
