"""Careless input to every env id, single and vector env: a clear error naming the argument, and
nothing changed (state, random streams, seeding) after the refused call."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pbhno_gym
from pbhno_gym.envs import PathwayEnv, PathwayVectorEnv, SpecError, load_spec
from pbhno_gym.envs.sb3 import SB3VecEnv

IDS = list(pbhno_gym.ENV_IDS)
# small grids and short episodes keep the whole file fast
SMALL = {
    "pbhno/Wnt-v1": {"layout": {"ny": 32, "nx": 32}},
    "pbhno/Notch-v1": {"layout": {"ny": 32, "nx": 32}, "settle_minutes": 150.0},
    "pbhno/NotchLattice-v0": {"layout": {"ny": 32, "nx": 32}, "settle_minutes": 150.0},
    "pbhno/MAPK-v0": {},
    "pbhno/MAPK-Unknown-v0": {},
    "pbhno/Wnt-Unknown-v1": {"layout": {"ny": 32, "nx": 32}},
    "pbhno/Notch-Unknown-v0": {"layout": {"ny": 32, "nx": 32}, "settle_minutes": 150.0},
}
# a layout field each id's layout kind does not read
UNUSED_LAYOUT = {
    "pbhno/Wnt-v1": ("sources", "uniform"),
    "pbhno/Notch-v1": ("rows", 3),
    "pbhno/NotchLattice-v0": ("source_width", 8.0),
    "pbhno/MAPK-v0": ("ny", -8),
    "pbhno/MAPK-Unknown-v0": ("ny", -8),
    "pbhno/Wnt-Unknown-v1": ("sources", "uniform"),
    "pbhno/Notch-Unknown-v0": ("rows", 3),
}
KINDS = ["single", "vector"]


def _small(env_id: str) -> dict:
    return {"horizon": 4, **SMALL[env_id]}


def _make(kind: str, env_id: str, **kw):
    if kind == "single":
        return PathwayEnv(env_id, **_small(env_id), **kw)
    return PathwayVectorEnv(2, env_id, **_small(env_id), **kw)


def _snapshot(env) -> list:
    c = env.core
    out = [c.state.x, c.t, c.dose_used, c.rng.keys, c.rng.counters, c.held, c.age, c.fresh]
    out += [c.log_theta, c.target_params, c.is_seeded, c.in_tol]
    out = [x.clone() for x in out] + ([c.state.L.clone()] if c.state.L is not None else [])
    if isinstance(env, PathwayEnv):
        out.append(str(env.np_random.bit_generator.state))
    return out


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x, y) if torch.is_tensor(x) else x == y for x, y in zip(a, b, strict=True))


def _action(env, value=0.0) -> np.ndarray:
    shape = env.action_space.shape
    return np.full(shape, value, np.float32)


@pytest.fixture(scope="module", params=[(k, i) for k in KINDS for i in IDS], ids=lambda p: f"{p[0]}-{p[1]}")
def env(request):
    kind, env_id = request.param
    e = _make(kind, env_id)
    e.reset(seed=0)
    return e


def test_step_before_reset_is_refused():
    for kind in KINDS:
        e = _make(kind, "pbhno/MAPK-v0")
        before = _snapshot(e)
        with pytest.raises(RuntimeError, match=r"before reset\(\)"):
            e.step(_action(e))
        assert _same(before, _snapshot(e))


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, [0]])
def test_bad_seed(env, seed):
    if isinstance(env, PathwayVectorEnv) and isinstance(seed, list):
        seed = [0, -2]  # one bad seed in a list of the right length
    before = _snapshot(env)
    with pytest.raises((TypeError, ValueError), match="seed"):
        env.reset(seed=seed)
    assert _same(before, _snapshot(env))


def test_vector_seed_list_length():
    e = _make("vector", "pbhno/MAPK-v0")
    with pytest.raises(ValueError, match="seed: expected 2 seeds"):
        e.reset(seed=[1, 2, 3])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"foo": 1}, "unknown key"),
        ({"target": 99}, r'options\["target"\]'),
        ({"target": -1}, r'options\["target"\]'),
        ({"target": "a"}, r'options\["target"\]'),
        ({"target": 1.5}, r'options\["target"\]'),
        ({"log_theta": [0.0, 1.0]}, r'options\["log_theta"\]'),
        ({"log_theta": "x"}, r'options\["log_theta"\]'),
        ("target", "reset options must be a dict"),
    ],
)
def test_bad_reset_options(env, options, match):
    before = _snapshot(env)
    with pytest.raises((TypeError, ValueError), match=match):
        env.reset(seed=5, options=options)
    assert _same(before, _snapshot(env))


def test_setpoint_target_row_checked_and_accepted():
    e = _make("single", "pbhno/MAPK-v0")
    with pytest.raises(ValueError, match=r"levels .* must lie in \[spec.target.low, high\]"):
        e.reset(seed=0, options={"target": [1, 2, 0.5, 0.5, 9.0]})
    _, info = e.reset(seed=0, options={"target": [1, 2, 0.3, 0.5, 0.7]})
    assert "0.30, 0.50, 0.70" in info["target"]


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        ("shape", ValueError, r"action must have shape"),
        ("nan", ValueError, "NaN or inf"),
        ("str", TypeError, "real numbers"),
        ("bool", TypeError, "real numbers"),
        ("complex", TypeError, "real numbers"),
        ("text", TypeError, "real numbers"),
        ("ragged", ValueError, "action must have shape"),
    ],
)
def test_bad_action(env, bad, exc, match):
    a = _action(env)
    action = {
        "shape": np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), np.float32),
        "nan": np.full(a.shape, np.nan, np.float32),
        "str": a.astype(str),
        "bool": np.zeros(a.shape, bool),
        "complex": a.astype(np.complex64),
        "text": "0.1",
        "ragged": [[0.0], [0.0, 1.0]],
    }[bad]
    before = _snapshot(env)
    with pytest.raises(exc, match=match):
        env.step(action)
    assert _same(before, _snapshot(env))
    env.step(a)  # still usable


@pytest.mark.parametrize("env_id", IDS)
def test_bad_spec_overrides(env_id):
    base = _small(env_id)
    field, value = UNUSED_LAYOUT[env_id]
    cases = [
        ({"target": {"tolerance": -1.0}}, "spec.target.tolerance"),
        ({"target": {"on_level": 2.0}}, "spec.target.on_level"),
        ({"target": {"period": 0}}, "spec.target.period"),
        ({"reward": {"scale": 0.0}}, "spec.reward.scale"),
        ({"observation": {"max_age": 0}}, "spec.observation.max_age"),
        ({"layout": {**base.get("layout", {}), field: value}}, f"spec.layout.{field}"),
    ]
    if env_id == "pbhno/MAPK-v0":
        cases.append(({"observation": {"n_ligand_samples": 4}}, "spec.observation.n_ligand_samples"))
    for over, match in cases:
        with pytest.raises(SpecError, match=match):
            load_spec(env_id, {**base, **over})


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_strings(kind):
    e = _make(kind, "pbhno/MAPK-v0", dtype="float64")
    assert e.core.dtype == torch.float64
    e.reset(seed=0)
    e.step(_action(e))
    for bad in ("float16", "double-ish", torch.int32, 3):
        with pytest.raises(ValueError, match="dtype must be float32 or float64"):
            _make(kind, "pbhno/MAPK-v0", dtype=bad)


def test_render_mode_refused_with_the_modes():
    with pytest.raises(ValueError, match=r"render_mode must be None or one of \['rgb_array'\]"):
        gym.make("pbhno/MAPK-v0", render_mode="human")
    for kind in KINDS:
        with pytest.raises(ValueError, match="render_mode"):
            _make(kind, "pbhno/MAPK-v0", render_mode="ascii")
    with pytest.raises(ValueError, match="render_mode"):
        SB3VecEnv("pbhno/MAPK-v0", num_envs=2, render_mode="human")
    e = gym.make("pbhno/MAPK-v0", render_mode="rgb_array_list", horizon=2)  # accepted by design
    e.reset(seed=0)
    e.step(np.zeros(2, np.float32))
    assert len(e.render()) == 2


def test_num_envs():
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_envs"):
            PathwayVectorEnv(n, "pbhno/MAPK-v0")


def test_sb3_adapter_refuses_bad_input():
    v = SB3VecEnv("pbhno/MAPK-v0", num_envs=2, horizon=4)
    with pytest.raises(RuntimeError, match=r"before reset\(\)"):
        v.step(np.zeros((2, 2), np.float32))
    v.seed(-1)
    with pytest.raises(ValueError, match="seed"):
        v.reset()
    v.seed(0)
    v.set_options({"target": 99})
    with pytest.raises(ValueError, match=r'options\["target"\]'):
        v.reset()
    v.set_options({})
    v.seed(0)
    v.reset()
    before = _snapshot(v)
    with pytest.raises(TypeError, match="real numbers"):
        v.step(np.zeros((2, 2)).astype(str))
    assert _same(before, _snapshot(v))
    v.step(np.zeros((2, 2), np.float32))
