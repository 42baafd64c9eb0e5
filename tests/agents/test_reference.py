"""Reference agents: zero, constant (mid dose), random pulses."""

import numpy as np
import pytest

from pbhno_gym.agents import make_agent

OBS = np.zeros((3, 26), np.float32)


def _trained(name, **kw):
    a = make_agent(name, **kw)
    rep = a.train("pbhno/MAPK-v0", 1000, 7, "unused", "cpu")
    assert rep.env_samples == 0 and not a.learns
    return a


def test_zero_and_constant():
    u0, _ = _trained("zero").predict(OBS)
    np.testing.assert_array_equal(u0, np.zeros((3, 2)))
    u, _ = _trained("constant").predict(OBS)
    np.testing.assert_allclose(u, np.tile([1.0, 5.0], (3, 1)))  # mid-range of [0, 2] and [0, 10]
    u, _ = _trained("constant", level=[1.0, 0.0]).predict(OBS)
    np.testing.assert_allclose(u[0], [2.0, 0.0])
    with pytest.raises(ValueError, match="constant.toml: level"):
        _trained("constant", level=1.5)


def test_random_is_seeded_and_within_bounds():
    def run(seed):
        a = make_agent("random")
        a.train("pbhno/MAPK-v0", 0, seed, "unused")
        starts = np.ones(3, bool)
        out = []
        for _ in range(40):
            u, _ = a.predict(OBS, episode_start=starts)
            starts = np.zeros(3, bool)
            out.append(u)
        return np.stack(out)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a >= 0).all() and (a[..., 0] <= 2).all() and (a[..., 1] <= 10).all() and (a > 0).any()


def test_save_and_load_are_no_ops_for_agents_that_learn_nothing(tmp_path):
    a = _trained("constant")
    u, _ = a.predict(OBS)
    a.save(tmp_path / "constant")
    a.load(tmp_path / "constant")
    np.testing.assert_array_equal(a.predict(OBS)[0], u)
