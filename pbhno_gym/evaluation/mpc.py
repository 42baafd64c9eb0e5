"""The differentiable MPC agents (:mod:`pbhno_gym.control`) through the one evaluation path.

:func:`mpc_policy` makes the :class:`~pbhno_gym.control.MPCAgent` (observations only) or the
ORACLE :class:`~pbhno_gym.control.OracleMPCAgent` as a policy for :func:`evaluate_agent`; the
oracle is bound to each batch's env core by the evaluation (``attach``), so it reads the true
state and parameters of exactly the episodes it is scored on. :func:`evaluate_mpc` runs either
(``pbhno plan``, ``scripts/bench_mpc.py``). Metrics, including the final error, are those of
:mod:`.episodes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..envs.spec import EnvSpec
from .episodes import EvalResult, Policy, evaluate_agent, physical_spec

__all__ = ["OracleBinding", "mpc_policy", "evaluate_mpc"]


class OracleBinding:
    """An :class:`OracleMPCAgent` made per evaluated batch, bound to that batch's env core.

    ``uses_true_model`` marks it as reading the truth; :func:`evaluate_agent` calls
    :meth:`attach` with the core of every batch it runs.
    """

    uses_true_model = True

    def __init__(self, config: Any = None, model: Any = None, oracle_state: bool = True) -> None:
        self.config, self.model, self.oracle_state = config, model, oracle_state
        self.agent = None

    def attach(self, core) -> None:
        """Bind to the env core whose episodes will be controlled (the oracle reads its truth)."""
        from ..control.agent import OracleMPCAgent

        self.agent = OracleMPCAgent(SimpleNamespace(core=core), self.config, self.model, self.oracle_state)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.agent is None:
            raise RuntimeError("OracleBinding: the evaluation must attach() it to the env core first")
        a, state = self.agent.predict(obs, state, episode_start, deterministic)
        return np.atleast_2d(a), state


def mpc_policy(
    env: str | EnvSpec,
    config: str | Path | dict | Any | None = None,
    model: Any = None,
    oracle: bool = False,
    oracle_state: bool = True,
) -> Policy:
    """The MPC agent for ``env`` (physical actions), from ``config`` (path, dict, MPCConfig or
    None = packaged ``agents/mpc.toml``) and ``model`` (None: the simulator with the spec's
    nominal parameters); ``oracle=True``: the oracle (``oracle_state=False``: true parameters,
    MHE state)."""
    if oracle:
        return OracleBinding(config, model, oracle_state)
    from ..control.agent import MPCAgent

    return MPCAgent.from_config(config, model, physical_spec(env))


def evaluate_mpc(
    env: str | EnvSpec,
    seeds: Sequence[int],
    oracle: bool = False,
    config: str | Path | dict | Any | None = None,
    model: Any = None,
    oracle_state: bool = True,
    **kwargs: Any,
) -> EvalResult:
    """:func:`evaluate_agent` of :func:`mpc_policy` on ``seeds`` (``kwargs``: device,
    batch_size, record, progress, options)."""
    agent = mpc_policy(env, config, model, oracle, oracle_state)
    desc = "oracle MPC" if oracle else "MPC"
    return evaluate_agent(agent, env, seeds, desc=kwargs.pop("desc", desc), **kwargs)
