"""The evaluation path: equals stepping the Gymnasium env by hand, batch-invariant, recurrent-state aware."""

import gymnasium as gym
import numpy as np
import pytest

import pbhno_gym  # noqa: F401
from pbhno_gym.evaluation import EvalResult, evaluate_agent, heldout_seeds

ENV = "pbhno/MAPK-v0"
OV = {"horizon": 20}


class FixedDose:
    """A stateless policy: the same physical dose for every env."""

    def __init__(self, u):
        self.u = np.asarray(u, np.float32)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.tile(self.u, (len(obs), 1)), state


def test_matches_single_env_rollout():
    from pbhno_gym.envs.spec import load_spec

    spec = load_spec(ENV, OV)
    seeds = heldout_seeds(3)
    res = evaluate_agent(FixedDose([1.0, 2.0]), spec, seeds)
    for i, s in enumerate(seeds):
        env = gym.make(ENV, **OV)
        env.reset(seed=s)
        energy, ret, errs = 0.0, 0.0, []
        for _ in range(spec.horizon):
            _, r, term, trunc, info = env.step(np.array([1.0, 2.0], np.float32))
            energy += info["energy"]
            ret += r
            errs.append(info["tracking_error"])
        assert trunc and not term
        assert res.success[i] == info["is_success"]
        assert res.energy[i] == pytest.approx(energy, rel=1e-5)
        assert res.returns[i] == pytest.approx(ret, rel=1e-5)
        assert res.final_error[i] == pytest.approx(np.mean(errs[-spec.target.success_window :]), rel=1e-5)
    # energy of a constant dose: horizon * sum_j (u_j / u_max_j)^2 with u_max = (2, 10)
    assert res.energy[0] == pytest.approx(20 * (0.5**2 + 0.2**2), rel=1e-5)


def test_batch_invariance_and_summary_bounds(tmp_path):
    seeds = heldout_seeds(5)
    a = evaluate_agent(FixedDose([0.5, 0.0]), ENV, seeds, record=2)
    b = evaluate_agent(FixedDose([0.5, 0.0]), ENV, seeds, batch_size=2, record=2)
    np.testing.assert_allclose(a.final_error, b.final_error, rtol=1e-5)
    np.testing.assert_array_equal(a.success, b.success)
    assert a.trajectories["phenotype"].shape == (2, 61, 1)
    assert a.trajectories["dose"].shape == (2, 60, 2)
    np.testing.assert_allclose(a.trajectories["phenotype"], b.trajectories["phenotype"], rtol=1e-5)
    s = a.summary()
    assert 0 <= s["success_lo"] <= s["success_rate"] <= s["success_hi"] <= 1
    assert s["final_error_lo"] <= s["final_error"] <= s["final_error_hi"]
    a.save(tmp_path / "eval.json")
    c = EvalResult.load(tmp_path / "eval.json")
    assert c.summary() == s and set(c.trajectories) == {"phenotype", "target", "dose"}
    assert list(c.target_class) == list(a.target_class) and c.by_class() == a.by_class()
    np.testing.assert_array_equal(a.target_class, b.target_class)


def test_target_class_is_the_episodes_target():
    """Each episode's class comes from the target the env drew for that seed (setpoint: the third of
    [low, high] holding the final level), and the per-class counts add up to the whole."""
    from pbhno_gym.envs.spec import load_spec

    spec = load_spec(ENV, OV)
    seeds = heldout_seeds(12)
    res = evaluate_agent(FixedDose([0.5, 0.0]), spec, seeds)
    t = spec.target
    for i, s in enumerate(seeds):
        env = gym.make(ENV, **OV)
        env.reset(seed=s)
        final = float(env.unwrapped.core.target_params[0, -1])
        third = ("low", "mid", "high")[min(int(3 * (final - t.low) / (t.high - t.low)), 2)]
        assert res.target_class[i] == f"final={third}"
    by = res.by_class()
    assert sum(v["episodes"] for v in by.values()) == 12
    assert sum(v["successes"] for v in by.values()) == int(res.success.sum())
    for v in by.values():
        assert v["success_lo"] <= v["success_rate"] <= v["success_hi"]


def test_pattern_target_class_is_the_choice():
    """Pattern targets: the class is the chosen entry of ``target.choices`` (reset option honoured)."""
    from pbhno_gym.envs.spec import load_spec

    spec = load_spec("pbhno/Notch-v1", {"horizon": 2})
    res = evaluate_agent(FixedDose([0.0, 0.0, 0.0]), spec, heldout_seeds(3), options={"target": 1})
    assert list(res.target_class) == ["choice=1"] * 3


def test_recurrent_state_and_episode_start_are_threaded():
    calls = []

    class Spy:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            calls.append((state, episode_start.copy(), deterministic))
            return np.zeros((len(obs), 2), np.float32), (0 if state is None else state + 1)

    evaluate_agent(Spy(), ENV, heldout_seeds(2), **{})
    assert calls[0][0] is None and calls[0][1].all()
    assert all(c[0] == i - 1 for i, c in enumerate(calls) if i > 0)
    assert not any(c[1].any() for c in calls[1:]) and all(c[2] for c in calls)
    assert len(calls) == 60


def test_bad_actions_and_seed_splits():
    with pytest.raises(ValueError, match="expected \\(2, 2\\)"):
        evaluate_agent(FixedDose([1.0]), ENV, heldout_seeds(2))
    test, val = set(heldout_seeds(50)), set(heldout_seeds(50, "validation"))
    assert not test & val and min(test | val) >= 2**40
    with pytest.raises(ValueError, match="split"):
        heldout_seeds(3, "train")
