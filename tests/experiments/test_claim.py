"""The sample-efficiency claim is computed from per-episode records and can come out either
way: synthetic records where it holds, does not hold, is inconclusive, or cannot be tested."""

import math

import numpy as np
import pytest

from pbhno_gym.experiments.report import claim_check, curve_summary, samples_to_threshold

EPISODES = 10


def _records(agent, kind, curve, worlds=(0, 1, 2, 3), seeds=("0",), jitter=None):
    """Episodes whose success fraction at each sample count is ``curve[n]`` (per world: plus
    ``jitter[w]``), rounded to whole episodes."""
    out = []
    for w in worlds:
        for s in seeds:
            for n, p in curve.items():
                q = min(max(p + (jitter or {}).get(w, 0.0), 0.0), 1.0)
                k = round(q * EPISODES)
                for e in range(EPISODES):
                    out.append(
                        {
                            "env": "E",
                            "env_id": "E",
                            "agent": agent,
                            "kind": kind,
                            "world_seed": str(w),
                            "train_seed": s,
                            "env_samples": n,
                            "episode_seed": e,
                            "success": int(e < k),
                            "final_error": 0.1,
                            "energy": 1.0,
                            "return": -1.0,
                        }
                    )
    return out


ORACLE = _records("mpc_oracle", "mpc", {0: 1.0}, seeds=("",))
NOMINAL = _records("mpc_nominal", "mpc", {0: 0.3}, seeds=("",))
MPC_FAST = _records("mpc_surrogate", "mpc", {60: 0.5, 240: 0.9, 960: 1.0})
RL_SLOW = _records("ppo", "rl", {1_000: 0.0, 10_000: 0.5, 100_000: 0.9}, seeds=("0", "1", "2"))
RL_FAST = _records("ppo", "rl", {1_000: 0.9, 10_000: 1.0}, seeds=("0", "1", "2"))
RL_SHORT = _records("ppo", "rl", {300: 0.0, 1_000: 0.4}, seeds=("0", "1", "2"))


def _verdicts(records):
    lines = claim_check(records, n_boot=200)
    assert len(lines) == 2  # 80 % and 90 %
    return [line.split("the claim ")[1] for line in lines]


def test_holds_when_rl_needs_more_than_ten_times_the_samples():
    st = samples_to_threshold(ORACLE + NOMINAL + MPC_FAST + RL_SLOW, "E", n_boot=200)
    assert st["mpc_surrogate"][0.9]["point"] == 240 and st["ppo"][0.9]["point"] == 100_000
    assert st["mpc_nominal"][0.8]["point"] == math.inf  # 0.3 < 0.8: the prior alone does not do it
    assert all(v.startswith("holds") for v in _verdicts(ORACLE + NOMINAL + MPC_FAST + RL_SLOW))


def test_does_not_hold_when_rl_is_about_as_sample_efficient():
    verdicts = _verdicts(ORACLE + MPC_FAST + RL_FAST)
    assert all(v.startswith("does not hold (at most") for v in verdicts), verdicts


def test_does_not_hold_when_the_learned_mpc_never_reaches_the_threshold():
    weak = _records("mpc_surrogate", "mpc", {60: 0.2, 240: 0.4, 960: 0.6})
    verdicts = _verdicts(ORACLE + weak + RL_SLOW)
    assert all(v.startswith("does not hold (mpc_surrogate does not reach") for v in verdicts)


def test_inconclusive_when_rl_was_not_trained_long_enough():
    verdicts = _verdicts(ORACLE + MPC_FAST + RL_SHORT)  # RL stops at 1,000 < 10 x 240
    assert all(v.startswith("is inconclusive") for v in verdicts), verdicts


def test_threshold_follows_the_oracle_and_nominal_note():
    weak_oracle = _records("mpc_oracle", "mpc", {0: 0.5}, seeds=("",))
    nominal = _records("mpc_nominal", "mpc", {0: 0.5}, seeds=("",))
    lines = claim_check(weak_oracle + nominal + MPC_FAST + RL_SLOW)
    assert all("The nominal model (0 samples) already reaches it." in line for line in lines)
    st = samples_to_threshold(weak_oracle + MPC_FAST, "E")
    assert st["mpc_surrogate"][0.8]["point"] == 60  # 0.5 >= 0.8 x 0.5


def test_not_tested_without_oracle_or_rl():
    assert "not tested" in claim_check(MPC_FAST + RL_SLOW)[0]
    assert "no RL agent" in claim_check(ORACLE + MPC_FAST)[0]


def test_bootstrap_interval_over_worlds_contains_the_point():
    # heterogeneous worlds: the threshold is reached at 240 in some worlds and at 960 in others
    jitter = {0: 0.1, 1: -0.3, 2: 0.1, 3: -0.3}
    mpc = _records("mpc_surrogate", "mpc", {60: 0.5, 240: 0.9, 960: 1.0}, jitter=jitter)
    st = samples_to_threshold(ORACLE + mpc, "E", n_boot=500)["mpc_surrogate"][0.8]
    assert st["lo"] <= st["point"] <= st["hi"] and st["lo"] < st["hi"]
    rows = {r["env_samples"]: r for r in curve_summary(ORACLE + mpc) if r["agent"] == "mpc_surrogate"}
    assert rows[240]["success"] == pytest.approx(np.mean([1.0, 0.6, 1.0, 0.6]))
    assert rows[240]["success_lo"] < rows[240]["success"] < rows[240]["success_hi"]


def _with_return_from_success(records):
    """The same episodes with their return equal to their success (a curve in return)."""
    return [{**r, "return": float(r["success"])} for r in records]


def test_still_rising_flags_curves_that_improve_over_their_last_segment():
    from pbhno_gym.experiments.report import plateau_lines, still_rising

    flat = _records("td3", "rl", {1_000: 0.2, 10_000: 0.8, 100_000: 0.8, 100_352: 0.8}, seeds=("0", "1"))
    recs = _with_return_from_success(ORACLE + RL_SLOW + flat)
    st = still_rising(recs, "E", n_boot=200)
    assert "mpc_oracle" not in st  # one point: no segment
    # RL_SLOW rises from 0.5 to 0.9 between 10k and 100k: an interval above 0
    assert (st["ppo"]["from"], st["ppo"]["to"]) == (10_000, 100_000)
    assert st["ppo"]["gain"] == pytest.approx(0.4) and st["ppo"]["lo"] > 0
    # the flat curve's segment starts at <= half its last count (not the 352-sample overshoot)
    assert st["td3"]["from"] == 10_000 and st["td3"]["gain"] == pytest.approx(0.0)
    assert st["td3"]["lo"] <= 0 <= st["td3"]["hi"]
    line = plateau_lines(recs)[0]
    assert "still improving at the end of the budget: ppo" in line and line.endswith("td3.")


def test_an_rl_agent_stopped_short_bounds_the_claim():
    """An RL agent that did not reach the threshold within a short budget may reach it right after:
    its budget, not the best agent's count, is RL's lower bound (the claim then cannot hold)."""
    short = _records("td3", "rl", {300: 0.0, 1_000: 0.4}, seeds=("0", "1", "2"))
    assert all(v.startswith("holds") for v in _verdicts(ORACLE + MPC_FAST + RL_SLOW))
    verdicts = _verdicts(ORACLE + MPC_FAST + RL_SLOW + short)
    assert all(v.startswith("is inconclusive") for v in verdicts), verdicts
    long = _records("td3", "rl", {1_000: 0.0, 50_000: 0.4}, seeds=("0", "1", "2"))
    verdicts = _verdicts(ORACLE + MPC_FAST + RL_SLOW + long)  # 50k / 960 > 10: still holds
    assert all(v.startswith("holds") and "the bound is td3's" in v for v in verdicts), verdicts
