"""The spec factory: every spec builds, its parts match the env's spaces, and dataset metadata
built from the spec equals the one a collected dataset records."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import pbhno_gym  # noqa: F401
from pbhno_gym.data import collect_episodes, load_dataset
from pbhno_gym.envs import build, channel_meta, dataset_meta, list_specs, load_spec

SPECS = sorted(list_specs())


@pytest.mark.parametrize("env_id", SPECS)
def test_every_spec_builds_and_matches_the_env_spaces(env_id):
    parts = build(env_id)
    env = gym.make(env_id, normalize_actions=False)
    try:
        assert parts.spec == load_spec(env_id)
        assert parts.obs_dim == env.observation_space.shape[0]
        low, high = parts.action_bounds()
        np.testing.assert_array_equal(low, env.action_space.low)
        np.testing.assert_array_equal(high, env.action_space.high)
        assert parts.control_names == tuple(env.unwrapped.core.control_names)
        assert torch.equal(parts.budget, env.unwrapped.core.budget)
        assert torch.equal(parts.prior.log_values, env.unwrapped.core.prior.log_values)
    finally:
        env.close()
    meta = dataset_meta(parts, seed=3)
    assert meta["seed"] == 3 and meta["env_id"] == env_id
    assert len(meta["channels"]) == parts.obs_model.n_channels == len(meta["channel_scale"])
    json.dumps(meta)  # JSON-safe


def test_normalised_action_bounds_and_bad_budget():
    spec = load_spec("pbhno/MAPK-v0", {"normalize_actions": True})
    low, high = build(spec).action_bounds()
    assert (low == -1).all() and (high == 1).all()
    with pytest.raises(ValueError, match="spec.budgets.nope"):
        build(load_spec("pbhno/MAPK-v0", {"budgets": {"nope": 1.0}}))


@pytest.mark.parametrize("env_id", ["pbhno/Notch-v1", "pbhno/MAPK-v0"])
def test_collected_dataset_meta_equals_meta_built_from_spec(env_id, tmp_path):
    spec = load_spec(env_id, {"horizon": 3})
    collect_episodes(spec, 2, num_envs=2, seed=1, out=tmp_path / "d.npz", progress=False, store_field=False)
    got = load_dataset(tmp_path / "d.npz").meta
    want = json.loads(json.dumps(dataset_meta(build(spec))))  # as stored: tuples become lists
    assert {k: got[k] for k in want} == want
    assert got["channels"] == channel_meta(build(spec).obs_model)["channels"]
