"""Unknown worlds: hidden per-instance parameters (``world_seed``) and hidden mechanisms."""

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pbhno_gym
from pbhno_gym.control import SimulatorModel
from pbhno_gym.envs import PathwayCore, PathwayEnv, SpecError, load_spec
from pbhno_gym.envs.worlds import draw_world, world_key, world_prior
from pbhno_gym.physics import MAPK
from pbhno_gym.physics.pathways import MECHANISMS, with_mechanisms

UNKNOWN = ["pbhno/MAPK-Unknown-v0", "pbhno/Wnt-Unknown-v1", "pbhno/Notch-Unknown-v0"]

# draw_world(world_prior(MAPK-Unknown, float64), [0, 1]): the stream's definition, frozen. A
# change here changes every benchmark world (k1..IC50_mek, K_fb).
STORED_MAPK = [
    [-0.08004435996526899, 0.08735434239701981, 1.3583774106985471, -1.0851532292383885,
     -0.39180486809574966, -0.8873196903846168, -0.28194382730886275, -2.3180373553063465],
    [0.2972378862313596, 0.5859644766163078, 0.046011518723792985, -1.3919187540806912,
     -0.021944142326931496, -0.6331508968027649, 0.5351518655516159, -1.6439594570254115],
]  # fmt: skip


def test_new_ids_registered():
    assert set(UNKNOWN) <= set(pbhno_gym.ENV_IDS)
    for env_id in UNKNOWN:
        spec = load_spec(env_id)
        assert spec.world_seed == 0 and len(spec.mechanisms) == 1


def test_world_stream_is_fixed_and_ignores_torch_rng():
    prior = world_prior(load_spec("pbhno/MAPK-Unknown-v0"), dtype=torch.float64)
    torch.manual_seed(123)
    a = draw_world(prior, [0, 1])
    torch.manual_seed(7)
    torch.rand(5)
    b = draw_world(prior, [0, 1])
    assert torch.equal(a, b)
    np.testing.assert_allclose(a.numpy(), STORED_MAPK, rtol=0, atol=1e-12)
    assert world_key(0) == 7385508280203184262


def test_same_world_across_resets_and_reset_seeds():
    env = PathwayEnv("pbhno/MAPK-Unknown-v0", world_seed=3, horizon=3)
    truth = env.core.true_parameters.log_values.clone()
    for seed in (0, 1, None):
        _, info = env.reset(seed=seed)
        env.step(env.action_space.sample())
        assert torch.equal(env.core.log_theta, truth)
        np.testing.assert_array_equal(info["log_theta"], truth[0].numpy())
    other = PathwayEnv("pbhno/MAPK-Unknown-v0", world_seed=3, horizon=3)
    other.reset(seed=99)
    assert torch.equal(other.core.log_theta, truth)


def test_different_world_seeds_differ():
    worlds = [PathwayCore(load_spec("pbhno/Wnt-Unknown-v1", {"world_seed": k})) for k in range(4)]
    lts = torch.stack([w.true_parameters.log_values[0] for w in worlds])
    assert torch.cdist(lts, lts).add(torch.eye(4) * 10).min() > 0.5


def test_agents_prior_is_the_skeleton_not_the_truth():
    for env_id in UNKNOWN:
        spec = load_spec(env_id)
        core = PathwayCore(spec)
        model = SimulatorModel(spec)
        truth = core.true_parameters
        P0 = len(model.theta)
        assert model.theta.names == core.prior.names
        assert truth.names[:P0] == core.prior.names and len(truth) == P0 + 1
        assert torch.equal(core.prior.log_values, model.theta.log_values)
        gap = (truth.log_values[0, :P0] - model.theta.log_values).abs()
        assert gap.max() > 0.3, env_id
        # the world prior the truth was drawn from extends what agents are told
        assert torch.equal(truth.prior_mean[:P0], core.prior.prior_mean)


# Max |phenotype change| (normalised units) from switching the mechanism on at nominal parameters,
# mid-range constant action, no initial noise, measured 2026-12-02: MAPK 0.0548 (20 steps),
# Notch 0.1086 (6 steps), Wnt 0.0489 (24 steps). Asserted: more than half of each.
MECH_EFFECT = [
    ("pbhno/MAPK-Unknown-v0", 20, 0.0548),
    ("pbhno/Notch-Unknown-v0", 6, 0.1086),
    ("pbhno/Wnt-Unknown-v1", 24, 0.0489),
]


@pytest.mark.parametrize(("env_id", "horizon", "measured"), MECH_EFFECT)
def test_mechanism_changes_trajectories(env_id, horizon, measured):
    runs = []
    for mech in (None, []):
        kw = dict(world_seed=None, init_noise=0.0, horizon=horizon)
        if mech is not None:
            kw["mechanisms"] = mech
        env = PathwayEnv(env_id, **kw)
        env.reset(seed=0)
        a = 0.5 * (env.action_space.low + env.action_space.high)
        runs.append(np.array([env.step(a)[4]["phenotype"] for _ in range(horizon)]))
    assert np.abs(runs[0] - runs[1]).max() > 0.5 * measured


def test_mapk_feedback_mechanism_is_the_feedback_variant():
    world = with_mechanisms(MAPK(), ["erk_feedback"])
    fb = MAPK(feedback=True)
    assert world.params.names == fb.params.names
    x = torch.rand(4, 1, 3, dtype=torch.float64)
    th = fb.params.unpack(fb.params.log_nominal(torch.float64))
    u = {"stimulus": torch.full((4, 1), 1.5, dtype=torch.float64), "mek_inhibitor": torch.ones(4, 1)}
    torch.testing.assert_close(world.drift(x, None, th, u), fb.drift(x, None, th, u))
    assert set(MECHANISMS) == {"mapk", "wnt", "notch"}


@pytest.mark.parametrize("env_id", UNKNOWN)
def test_checkers_pass(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(gym.make(env_id, normalize_actions=True, horizon=4).unwrapped)
        sb3_check_env(gym.make(env_id, normalize_actions=True, horizon=4), warn=True)
    assert [str(w.message) for w in caught] == []


def test_vector_env_worlds():
    shared = gym.make_vec(
        "pbhno/MAPK-Unknown-v0", num_envs=3, vectorization_mode="vector_entry_point", world_seed=7
    )
    lt = shared.unwrapped.core.true_parameters.log_values
    assert torch.equal(lt, lt[:1].expand(3, -1))
    single = PathwayEnv("pbhno/MAPK-Unknown-v0", world_seed=7)
    assert torch.equal(lt[0], single.core.true_parameters.log_values[0])

    per = gym.make_vec(
        "pbhno/MAPK-Unknown-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        world_seed=[5, 6, 5],
        horizon=2,
    )
    core = per.unwrapped.core
    lt = core.true_parameters.log_values.clone()
    assert torch.equal(lt[0], lt[2]) and not torch.equal(lt[0], lt[1])
    per.reset(seed=0)
    for _ in range(4):  # through an autoreset: worlds stay
        per.step(per.action_space.sample())
    assert torch.equal(core.log_theta, lt)
    with pytest.raises(ValueError, match="one seed per env"):
        gym.make_vec(
            "pbhno/MAPK-Unknown-v0", num_envs=2, vectorization_mode="vector_entry_point", world_seed=[1]
        )
    from pbhno_gym.envs.sb3 import SB3VecEnv

    sb3 = SB3VecEnv("pbhno/MAPK-Unknown-v0", 3, world_seed=[5, 6, 5], horizon=2)
    assert torch.equal(sb3.core.true_parameters.log_values, lt)  # the same worlds as the native env


def test_world_seed_and_randomize_exclude_each_other():
    with pytest.raises(SpecError, match="world_seed.*randomize_parameters"):
        gym.make("pbhno/MAPK-Unknown-v0", randomize_parameters=True)
    with pytest.raises(ValueError, match="world_seed.*randomize_parameters"):
        gym.make_vec(
            "pbhno/MAPK-v0",
            num_envs=2,
            vectorization_mode="vector_entry_point",
            world_seed=[1, 2],
            randomize_parameters=True,
        )
    with pytest.raises(SpecError, match="unknown mechanism 'nope'.*erk_feedback"):
        load_spec("pbhno/MAPK-v0", {"mechanisms": ["nope"]})
    with pytest.raises(SpecError, match="world_seed"):
        load_spec("pbhno/MAPK-v0", {"world_seed": -1})


def test_reset_log_theta_option_keeps_hidden_mechanism():
    env = PathwayEnv("pbhno/MAPK-Unknown-v0", horizon=2)
    hidden = env.core.true_parameters.log_values[0, -1].clone()
    env.reset(seed=0, options={"log_theta": env.core.prior.log_values})
    assert torch.equal(env.core.log_theta[0, :-1], env.core.prior.log_values)
    assert env.core.log_theta[0, -1] == hidden


def test_oracle_plans_through_the_world():
    from pbhno_gym.control.agent import OracleMPCAgent

    env = PathwayEnv("pbhno/MAPK-Unknown-v0", horizon=2)
    agent = OracleMPCAgent(env)
    assert agent.model.sim.params.names == env.core.true_parameters.names


@pytest.mark.parametrize(
    "env_id", ["pbhno/MAPK-Unknown-v0", "pbhno/Wnt-Unknown-v1", "pbhno/Notch-Unknown-v0"]
)
def test_unknown_task_uses_its_base_tasks_agent_settings(env_id):
    """An Unknown task names its known-world task (``base``); agents without a table for the
    Unknown id plan and train with the base task's settings, not the generic defaults."""
    from pbhno_gym.agents.config import load_agent_config
    from pbhno_gym.control.config import load_config

    spec = load_spec(env_id)
    base = load_spec(spec.base)
    assert base.pathway == spec.pathway and not base.mechanisms and base.world_seed is None
    own = load_config(None, spec)
    if env_id == "pbhno/Wnt-Unknown-v1":  # its own MPC table: Wnt-v1's, planning the whole episode
        assert own.horizon == spec.horizon and own.horizon != load_config(None, base).horizon
        own = dataclasses.replace(own, horizon=load_config(None, base).horizon)
    assert own == load_config(None, base)
    for name in ("ppo", "sac", "mpc_surrogate"):
        assert load_agent_config(name, spec) == load_agent_config(name, base)
    if spec.pathway != "mapk":  # field pathways have their own planner table (Adam, short window)
        assert load_config(None, spec).solver != load_config(None).solver


def test_base_must_name_another_task():
    with pytest.raises(SpecError, match="spec.base"):
        load_spec("pbhno/MAPK-Unknown-v0", {"base": "pbhno/MAPK-Unknown-v0"})


def test_mpc_benchmark_problems_plan_through_the_world():
    """``benchmarks.mpc.env_problems`` works on an Unknown id and plans through the world: the
    problem carries the world's parameters (mechanism included) and its model's step differs
    from the skeleton's at the same state, controls and skeleton parameters."""
    from pbhno_gym.benchmarks.mpc import env_problems

    prob, model = env_problems("pbhno/MAPK-Unknown-v0", 3, warmup=4)
    spec = load_spec("pbhno/MAPK-Unknown-v0")
    P0 = len(PathwayCore(spec, 1).prior)
    assert prob.log_theta.shape == (3, P0 + 1)
    u = torch.full((3, 2), 1.0)
    world = model.step(prob.z0, u, prob.log_theta).x
    skeleton = SimulatorModel(spec, state_floor=1e-6).step(prob.z0, u, prob.log_theta[:, :P0]).x
    assert torch.isfinite(world).all()
    assert (world - skeleton).abs().max() > 1e-4  # ERK feedback acts within one 1-min step


def test_spec_parameters_set_the_mechanism_prior():
    """``parameters={"K_fb": ...}`` moves the hidden mechanism's prior (the world is drawn around
    it), leaves the skeleton prior agents are told alone, and unknown names are refused."""
    base = PathwayCore(load_spec("pbhno/MAPK-Unknown-v0"), 1)
    moved = PathwayCore(load_spec("pbhno/MAPK-Unknown-v0", {"parameters": {"K_fb": 0.9}}), 1)
    assert moved.world_prior.as_dict()["K_fb"] == pytest.approx(0.9, rel=1e-6)
    assert torch.equal(moved.prior.log_values, base.prior.log_values)
    shift = moved.true_parameters.log_values[0, -1] - base.true_parameters.log_values[0, -1]
    assert float(shift) == pytest.approx(float(np.log(0.9 / 0.3)), rel=1e-5)  # same draw z, new mean
    with pytest.raises(ValueError, match="spec.parameters: unknown parameter 'K_xx'"):
        PathwayCore(load_spec("pbhno/MAPK-Unknown-v0", {"parameters": {"K_xx": 0.9}}), 1)


# ---------------------------------------------------------------- conditioned worlds (Wnt-Unknown-v1)
SMALL_WNT = {"layout": {"ny": 32, "nx": 32}}  # the quick comparison's grid: screening costs ~4x less


def test_prior_scale_scales_what_agents_are_told_and_the_world_draw():
    full = load_spec(
        "pbhno/Wnt-Unknown-v1", {"prior_scale": 1.0, "world_untreated": None, "world_protocols": []}
    )
    half = load_spec("pbhno/Wnt-Unknown-v1", {"world_untreated": None, "world_protocols": []})
    assert half.prior_scale == 0.5
    a, b = PathwayCore(full, 1), PathwayCore(half, 1)
    torch.testing.assert_close(b.prior.prior_sd, 0.5 * a.prior.prior_sd, rtol=0, atol=0)
    torch.testing.assert_close(b.world_prior.prior_sd, 0.5 * a.world_prior.prior_sd, rtol=0, atol=0)
    torch.testing.assert_close(SimulatorModel(half).theta.prior_sd, b.prior.prior_sd, rtol=0, atol=0)
    mean = a.world_prior.prior_mean  # same z, half the distance from the prior mean
    torch.testing.assert_close(
        b.true_parameters.log_values[0] - mean, 0.5 * (a.true_parameters.log_values[0] - mean)
    )
    with pytest.raises(SpecError, match="spec.prior_scale"):
        load_spec("pbhno/Wnt-Unknown-v1", {"prior_scale": 0.0})


def test_conditioned_world_is_the_first_candidate_passing_the_screen():
    """World k is the first of its candidate draws whose untreated tissue ends with the boundary
    after column ``world_untreated`` and whose targets a certificate protocol meets; earlier
    candidates fail, the shipped cache holds the same index, and the env runs that world."""
    from pbhno_gym.envs.worlds import _ACCEPTED, _fingerprint, _screen, screen_worlds

    spec = load_spec("pbhno/Wnt-Unknown-v1", SMALL_WNT)
    prior = world_prior(spec, dtype=torch.float64)
    j = screen_worlds(spec, prior, [9])[9]  # afresh: no cache read (world 9: candidate 1)
    cands = torch.cat([draw_world(prior, [9], i) for i in range(j + 1)])
    ok = _screen(spec, cands)
    assert bool(ok[j]) and not bool(ok[:j].any())
    core = PathwayCore(spec, 1, dtype=torch.float64, world_seeds=[9])
    torch.testing.assert_close(core.true_parameters.log_values[0], cands[j], rtol=0, atol=0)
    assert _ACCEPTED[(_fingerprint(spec), 9)] == j  # from the shipped table (or this screening)
    # the unconditioned draw of the same seed is candidate 0
    raw = PathwayCore(
        load_spec("pbhno/Wnt-Unknown-v1", {**SMALL_WNT, "world_untreated": None, "world_protocols": []}),
        1,
        world_seeds=[9],
    )
    torch.testing.assert_close(raw.true_parameters.log_values[0], cands[0].float(), rtol=0, atol=1e-6)


def test_conditioned_world_needs_control_and_a_certificate_protocol_meets_its_targets():
    """In the env (float32, no initial noise) world 0's untreated episode ends with columns 0-2
    past the on/off midpoint and column 3 below it, so no target is met; for each target, one of
    the spec's certificate protocols, applied as env actions, succeeds."""
    from pbhno_gym.envs.worlds import protocol_phenotype

    spec = load_spec("pbhno/Wnt-Unknown-v1", {**SMALL_WNT, "init_noise": 0.0})
    env = PathwayEnv(env_spec=spec)
    protocols = torch.tensor(spec.world_protocols, dtype=torch.float64)
    p_end = protocol_phenotype(spec, env.core.true_parameters.log_values.double(), protocols)[0]
    margin = spec.world_margin - 1e-3  # float32 env vs float64 screening
    for target, k in enumerate(spec.target.choices):
        env.reset(seed=0, options={"target": target})
        on = torch.arange(16) % 4 < k
        meets = torch.where(on, p_end >= 0.588 + margin, p_end <= 0.412 - margin).all(1)
        assert meets.any(), (k, p_end)
        level, start = protocols[int(meets.nonzero()[0]), 0::2], protocols[int(meets.nonzero()[0]), 1::2]
        for t in range(spec.horizon):
            *_, info = env.step(torch.where(t * spec.control_interval >= start, level, 0.0).float().numpy())
        assert info["is_success"], (k, info["phenotype"])
    env.reset(seed=0)
    for _ in range(spec.horizon):
        *_, info = env.step(np.zeros(2, np.float32))
    p = info["phenotype"].reshape(4, 4)
    assert (p[:, :3] >= 0.5 + margin).all() and (p[:, 3] <= 0.5 - margin).all(), p
    assert not info["is_success"]


def test_conditioning_that_no_world_meets_is_refused_by_name(monkeypatch):
    from pbhno_gym.envs import worlds

    monkeypatch.setattr(worlds, "MAX_CANDIDATES", 8)
    spec = load_spec("pbhno/Wnt-Unknown-v1", {**SMALL_WNT, "world_untreated": 0, "world_margin": 0.49})
    with pytest.raises(RuntimeError, match="world_seed 0: none of 8 candidate worlds.*world_untreated=0"):
        PathwayCore(spec, 1)
    with pytest.raises(SpecError, match="spec.world_untreated needs a pattern target"):
        load_spec("pbhno/MAPK-Unknown-v0", {"world_untreated": 1})
    with pytest.raises(SpecError, match="spec.world_margin"):
        load_spec("pbhno/Wnt-Unknown-v1", {"world_margin": 0.5})
