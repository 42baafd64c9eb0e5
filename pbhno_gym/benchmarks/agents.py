"""Decision latency of comparison agents: wall time of one ``predict`` call on real observations,
at batch 1 (one tissue controlled in real time) and at a larger batch (amortised per decision).
The ``zero`` agent, timed in the same run, is the floor (the cost of the call itself)."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from ..agents import make_agent
from ..envs.core import PathwayCore
from ..envs.spec import load_spec
from ..evaluation.episodes import heldout_seeds
from ..utils.rng import seed_to_key

TINY_TRAIN = {
    "ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
    "recurrent_ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
    "sac": {"n_envs": 4, "learning_starts": 64, "gradient_steps": 1, "batch_size": 32},
    "td3": {"n_envs": 4, "learning_starts": 64, "gradient_steps": 1, "batch_size": 32},
}


def decision_latency_ms(
    agent_name: str, env_id: str, batch: int, steps: int = 20, device: str = "cpu"
) -> float:
    """Median ms per ``predict`` call on ``batch`` observations of an episode in progress.

    Learning agents are trained for a token budget first (latency does not depend on training).
    """
    spec = load_spec(env_id)
    agent = make_agent(agent_name, **TINY_TRAIN.get(agent_name, {}))
    with tempfile.TemporaryDirectory() as d:
        agent.train(spec, 256, 0, d, device=device, progress=False)
    core = PathwayCore(spec, batch, device)
    obs = core.reset(keys=torch.tensor([seed_to_key(s) for s in heldout_seeds(batch)]))
    state, start, times = None, np.ones(batch, bool), []
    for _ in range(steps):
        o = obs.cpu().numpy()
        t0 = time.perf_counter()
        act, state = agent.predict(o, state=state, episode_start=start, deterministic=True)
        times.append(time.perf_counter() - t0)
        start = np.zeros(batch, bool)
        with torch.no_grad():
            obs = core.step(torch.as_tensor(act, device=core.device)).obs
    return 1e3 * float(np.median(times[1:]))
