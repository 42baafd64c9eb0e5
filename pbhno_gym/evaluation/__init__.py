"""One evaluation code path for every controller: held-out episodes, metrics, confidence intervals."""

from .episodes import HELDOUT_SEED_BASE, MAX_TRAIN_SEED, EvalResult, Policy, evaluate_agent, heldout_seeds
from .mpc import OracleBinding, evaluate_mpc, mpc_policy
from .stats import bootstrap_mean_ci, mean_with_ci, wilson_interval

__all__ = [
    "EvalResult",
    "Policy",
    "evaluate_agent",
    "evaluate_mpc",
    "mpc_policy",
    "OracleBinding",
    "heldout_seeds",
    "HELDOUT_SEED_BASE",
    "MAX_TRAIN_SEED",
    "wilson_interval",
    "bootstrap_mean_ci",
    "mean_with_ci",
]
