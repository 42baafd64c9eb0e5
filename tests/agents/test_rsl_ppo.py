"""rsl_ppo (rsl-rl PPO on the batched env): the Agent contract, exact resume, and agreement with
the SB3 PPO reference on a small MAPK task."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("rsl_rl")

from pbhno_gym.agents import make_agent  # noqa: E402
from pbhno_gym.envs.spec import load_spec  # noqa: E402
from pbhno_gym.evaluation import evaluate_agent, heldout_seeds  # noqa: E402

SPEC = load_spec("pbhno/MAPK-v0", {"horizon": 20})
TINY = {"n_envs": 16, "num_steps_per_env": 8}  # 128 samples per update
OBS = np.random.default_rng(0).normal(size=(5, 26)).astype(np.float32)
OBS[:, 1:3] = OBS[:, 1:3] > 0  # fresh mask / age channels in [0, 1]


def _weights(agent) -> dict[str, torch.Tensor]:
    return {**agent.actor.state_dict(), **{"critic." + k: v for k, v in agent.critic.state_dict().items()}}


def test_contract_save_load_and_seed_reproducibility(tmp_path):
    class Curve:
        def __init__(self):
            self.marks, self.points, self.seconds = [128, 384], [], 0.0

        def pending(self, n):
            return len(self.points) < len(self.marks) and n >= self.marks[len(self.points)]

        def __call__(self, agent, n):
            self.points.append((n, agent.predict(OBS)[0].shape))
            return {}

    curve = Curve()
    agent = make_agent("rsl_ppo", **TINY)
    rep = agent.train(SPEC, 384, 0, tmp_path / "a", "cpu", evaluate=curve, progress=False)
    assert rep.env_samples == 384 and not rep.loaded and rep.device == "cpu"
    assert curve.points == [(128, (5, 2)), (384, (5, 2))]
    for f in ("model.pt", "env_spec.json", "train_report.json"):
        assert (tmp_path / "a" / f).is_file(), f
    a1, _ = agent.predict(OBS)
    assert a1.shape == (5, 2) and a1.dtype == np.float32
    assert (a1 >= 0).all() and (a1[:, 0] <= 2).all() and (a1[:, 1] <= 10).all()  # physical units
    noisy = np.stack([agent.predict(OBS, deterministic=False)[0] for _ in range(2)])
    assert not np.allclose(noisy[0], noisy[1]) and (noisy >= 0).all()
    # same settings again: loads; the saved folder alone restores the same actions
    again = make_agent("rsl_ppo", **TINY)
    assert again.train(SPEC, 384, 0, tmp_path / "a", progress=False).loaded
    fresh = make_agent("rsl_ppo", **TINY)
    fresh.load(tmp_path / "a")
    for other in (again, fresh):
        np.testing.assert_array_equal(other.predict(OBS)[0], a1)
    # the seed fixes the run (weights bitwise), another seed changes it
    same = make_agent("rsl_ppo", **TINY)
    same.train(SPEC, 384, 0, tmp_path / "b", progress=False)
    other = make_agent("rsl_ppo", **TINY)
    other.train(SPEC, 384, 1, tmp_path / "c", progress=False)
    w, ws, wo = _weights(agent), _weights(same), _weights(other)
    assert all(torch.equal(w[k], ws[k]) for k in w)
    assert not all(torch.equal(w[k], wo[k]) for k in w)
    res = evaluate_agent(fresh, SPEC, heldout_seeds(3))
    assert res.n == 3 and np.isfinite(res.final_error).all()


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'n_step'"):
        make_agent("rsl_ppo", n_step=3).train(SPEC, 128, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="n_envs"):
        make_agent("rsl_ppo", n_envs=0).train(SPEC, 128, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="compile_env"):
        make_agent("rsl_ppo", compile_env="yes").train(SPEC, 128, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="budget"):
        make_agent("rsl_ppo", **TINY).train(SPEC, 0, 0, tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="before predict"):
        make_agent("rsl_ppo").predict(OBS)


def test_resume_reaches_the_uninterrupted_weights(tmp_path):
    """The checkpoint holds the learner and the simulator (episodes in flight, random streams):
    a run interrupted after 2 updates and resumed to 4 ends bitwise where the straight run ends."""
    straight = make_agent("rsl_ppo", **TINY)
    straight.train(SPEC, 512, 0, tmp_path / "straight", progress=False)
    first = make_agent("rsl_ppo", **TINY)
    first.train(SPEC, 256, 0, tmp_path / "resumed", progress=False)
    (tmp_path / "resumed" / "model.pt").unlink()  # interrupted before the final save
    (tmp_path / "resumed" / "train_report.json").unlink()
    resumed = make_agent("rsl_ppo", **TINY)
    rep = resumed.train(SPEC, 512, 0, tmp_path / "resumed", progress=False)
    assert rep.extra["resumed_from"] == 256 and rep.env_samples == 512
    w, wr = _weights(straight), _weights(resumed)
    assert all(torch.equal(w[k], wr[k]) for k in w), [k for k in w if not torch.equal(w[k], wr[k])]
    latest = json.loads((tmp_path / "resumed" / "checkpoints" / "latest.json").read_text())
    assert latest["num_timesteps"] == 512
    # checkpoints of other settings (another seed) are not resumed
    (tmp_path / "resumed" / "model.pt").unlink()
    rep = make_agent("rsl_ppo", **TINY).train(SPEC, 256, 1, tmp_path / "resumed", progress=False)
    assert rep.extra["resumed_from"] is None


def test_agrees_with_sb3_ppo_on_a_small_task(tmp_path):
    """SB3 PPO (agents/ppo.toml) and rsl_ppo, 20k samples each on 20-step MAPK, two seeds each.

    Measured (64 held-out episodes, 3 seeds): constant dose -1.92, zero -7.04; SB3 PPO
    -0.92/-1.06/-0.91, rsl_ppo -0.61/-0.60/-0.97. Seed-to-seed SDs 0.08 (SB3) and 0.21 (rsl),
    so the difference of two-seed means has SD ~0.16: the tolerance 0.5 is ~3 SD, half the gain
    over the constant dose. Both must also beat the constant dose by 0.5 (that gain is ~1.0).
    """
    seeds, budget = heldout_seeds(64), 20_000
    const = make_agent("constant")
    const.train(SPEC, 0, 0, tmp_path / "const", progress=False)
    base = evaluate_agent(const, SPEC, seeds).returns.mean()
    means = {}
    for name, opts in (("ppo", {}), ("rsl_ppo", {"n_envs": 256, "num_steps_per_env": 8})):
        rets = []
        for s in (0, 1):
            a = make_agent(name, **opts)
            a.train(SPEC, budget, s, tmp_path / f"{name}{s}", progress=False)
            rets.append(evaluate_agent(a, SPEC, seeds).returns.mean())
        means[name] = float(np.mean(rets))
    assert means["ppo"] > base + 0.5, (means, base)
    assert means["rsl_ppo"] > base + 0.5, (means, base)
    assert abs(means["ppo"] - means["rsl_ppo"]) < 0.5, means
