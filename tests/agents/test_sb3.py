"""SB3 agents: train on the batched env, save, reload, evaluate; resume from a checkpoint; configs."""

import json

import numpy as np
import pytest

from pbhno_gym.agents import make_agent
from pbhno_gym.agents.config import load_agent_config
from pbhno_gym.agents.sb3 import sb3_kwargs, zoo_yaml
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, heldout_seeds

SPEC = load_spec("pbhno/MAPK-v0", {"horizon": 20})
TINY = {
    "ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2},
    "recurrent_ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
    "sac": {"n_envs": 4, "learning_starts": 64, "gradient_steps": 1, "batch_size": 32, "buffer_size": 1000},
    "td3": {"n_envs": 4, "learning_starts": 64, "gradient_steps": 1, "batch_size": 32, "buffer_size": 1000},
}
TINY["sac"]["policy_kwargs"] = TINY["td3"]["policy_kwargs"] = {"net_arch": [16, 16]}


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3", "recurrent_ppo"])
def test_train_save_reload_evaluate(algo, tmp_path):
    agent = make_agent(algo, **TINY[algo])
    rep = agent.train(SPEC, 256, 0, tmp_path, "cpu", progress=False)
    assert rep.env_samples >= 256 and not rep.loaded and rep.device == "cpu"
    for f in ("model.zip", "vecnormalize.pkl", "env_spec.json", "train_report.json"):
        assert (tmp_path / f).is_file(), f
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert any((tmp_path / "checkpoints").glob("model_*.zip"))
    # a second train() with the same settings loads the saved agent and acts identically
    again = make_agent(algo, **TINY[algo])
    rep2 = again.train(SPEC, 256, 0, tmp_path, "cpu", progress=False)
    assert rep2.loaded and rep2.env_samples == rep.env_samples
    obs = np.random.default_rng(0).normal(size=(5, 26)).astype(np.float32)
    obs[:, 1:3] = obs[:, 1:3] > 0  # fresh mask / age channels in [0, 1]
    a1, _ = agent.predict(obs, episode_start=np.ones(5, bool))
    a2, _ = again.predict(obs, episode_start=np.ones(5, bool))
    np.testing.assert_allclose(a1, a2, rtol=1e-6)
    # Agent.load(path): the saved folder alone (its env spec included) restores the agent
    fresh = make_agent(algo, **TINY[algo])
    fresh.load(tmp_path)
    a3, _ = fresh.predict(obs, episode_start=np.ones(5, bool))
    np.testing.assert_allclose(a1, a3, rtol=1e-6)
    assert (a1 >= 0).all() and (a1[:, 0] <= 2).all() and (a1[:, 1] <= 10).all()  # physical units
    res = evaluate_agent(again, SPEC, heldout_seeds(3))
    assert res.n == 3 and np.isfinite(res.final_error).all()


def test_resume_from_checkpoint_and_curve_callbacks(tmp_path):
    class Curve:
        def __init__(self):
            self.marks, self.points = [128, 256], []

        def pending(self, n):
            return len(self.points) < len(self.marks) and n >= self.marks[len(self.points)]

        def __call__(self, agent, n):
            self.points.append(n)
            return {"success_rate": 0.0}

    opts = dict(TINY["ppo"], checkpoint_every=128)
    curve = Curve()
    make_agent("ppo", **opts).train(SPEC, 256, 0, tmp_path, "cpu", evaluate=curve, progress=False)
    assert curve.points == [128, 256]
    latest = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert latest["num_timesteps"] == 256
    # interrupted before the final save: a longer run resumes from the newest checkpoint
    (tmp_path / "model.zip").unlink()
    (tmp_path / "train_report.json").unlink()
    rep = make_agent("ppo", **opts).train(SPEC, 512, 0, tmp_path, "cpu", progress=False)
    assert rep.extra["resumed_from"] == 256 and rep.env_samples == 512
    # checkpoints of other settings (here another seed) are not resumed
    (tmp_path / "model.zip").unlink()
    rep = make_agent("ppo", **opts).train(SPEC, 256, 1, tmp_path, "cpu", progress=False)
    assert rep.extra["resumed_from"] is None and rep.env_samples == 256


def test_config_merge_validation_and_zoo_export():
    d, m = load_agent_config("ppo"), load_agent_config("ppo", "pbhno/MAPK-v0", {"batch_size": 32})
    assert d["n_envs"] == 16 and m["n_envs"] == 32 and m["batch_size"] == 32
    assert m["policy_kwargs"]["net_arch"] == d["policy_kwargs"]["net_arch"]  # nested tables merge
    kw = sb3_kwargs("ppo", dict(m, learning_rate="lin_0.001"), 2)
    assert "n_envs" not in kw and kw["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kw["policy_kwargs"]["activation_fn"].__name__ == "Tanh"
    with pytest.raises(ValueError, match="unknown key 'n_step'"):
        sb3_kwargs("ppo", {"n_step": 3}, 2)
    td3 = sb3_kwargs("td3", load_agent_config("td3", "pbhno/MAPK-v0"), 2)
    assert type(td3["action_noise"]).__name__ == "NormalActionNoise"
    text = zoo_yaml("recurrent_ppo", ["pbhno/MAPK-v0", "pbhno/Wnt-v1"])
    assert "--algo ppo_lstm" in text
    blocks = [ln for ln in text.splitlines() if ln and not ln.startswith(("#", " "))]
    assert blocks == ['"pbhno/MAPK-v0":', '"pbhno/Wnt-v1":']
    entries = dict(ln.strip().split(": ", 1) for ln in text.splitlines() if ln.startswith("  "))
    values = {k: json.loads(v) for k, v in entries.items()}  # every value is a JSON (= YAML flow) scalar
    assert values["policy"] == "MlpLstmPolicy" and values["policy_kwargs"].startswith("dict(net_arch=")
    assert values["normalize"] == {"norm_obs": True, "norm_reward": True}


def test_zoo_command_writes_yaml(tmp_path, capsys):
    from pbhno_gym.cli import main

    out = tmp_path / "td3.yml"
    assert main(["zoo", "--algo", "td3", "--envs", "pbhno/MAPK-v0", "--out", str(out)]) == 0
    text = out.read_text()
    assert '"pbhno/MAPK-v0":' in text and '  noise_type: "normal"' in text and "checkpoint_every" not in text


def test_sac_resume_restores_replay_buffer_normalisation_and_rng(tmp_path):
    """An interrupted SAC run resumes with its replay buffer, VecNormalize statistics and RNG states.

    Not bitwise the uninterrupted run: the simulator's episodes in flight are not checkpointed, so
    SB3 starts fresh episodes on resume; everything the learner carries over is restored exactly.
    """
    import torch

    opts = dict(TINY["sac"], checkpoint_every=128, learning_starts=32)
    first = make_agent("sac", **opts)
    first.train(SPEC, 256, 0, tmp_path, "cpu", progress=False)
    d = tmp_path / "checkpoints"
    assert {p.name for p in d.iterdir()} >= {"replay_buffer_256.pkl", "vecnormalize_256.pkl", "rng_256.pt"}
    rb, vn = first.model.replay_buffer, first.vecnorm
    assert rb.pos == 64 and not rb.full  # 256 samples / 4 envs
    # interrupted before the final save: resuming loads the checkpoint's state
    (tmp_path / "model.zip").unlink()
    (tmp_path / "train_report.json").unlink()
    rng = torch.load(d / "rng_256.pt", weights_only=True)
    again = make_agent("sac", **opts)
    rep = again.train(SPEC, 256, 0, tmp_path, "cpu", progress=False)
    assert rep.extra["resumed_from"] == 256
    rb2, vn2 = again.model.replay_buffer, again.vecnorm
    assert rb2.pos == rb.pos and rb2.full == rb.full
    for k in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(rb2, k), getattr(rb, k), err_msg=k)
    np.testing.assert_array_equal(vn2.obs_rms.mean, vn.obs_rms.mean)
    np.testing.assert_array_equal(vn2.obs_rms.var, vn.obs_rms.var)
    assert vn2.obs_rms.count == vn.obs_rms.count
    assert torch.equal(torch.get_rng_state(), rng["torch"])
    for (k, a), b in zip(
        first.model.policy.state_dict().items(), again.model.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    # and a longer budget continues from there with the restored buffer
    (tmp_path / "model.zip").unlink()
    rep = make_agent("sac", **opts).train(SPEC, 384, 0, tmp_path, "cpu", progress=False)
    assert rep.extra["resumed_from"] == 256 and rep.env_samples == 384
