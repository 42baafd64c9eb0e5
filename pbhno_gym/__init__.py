"""pbhno-gym: learned-physics control of cell-signalling dynamics.

Importing the package registers the Gymnasium environments (``pbhno/Wnt-v1``, ``pbhno/Notch-v1``,
``pbhno/NotchLattice-v0``, ``pbhno/MAPK-v0``), so ``gym.make("pbhno/Wnt-v1")`` works after
``import pbhno_gym`` (or ``gym.register_envs(pbhno_gym)``, or ``gym.make("pbhno_gym:pbhno/Wnt-v1")``).
"""

from .envs import register_envs

__version__ = "0.1.0"

ENV_IDS = tuple(register_envs())

__all__ = ["ENV_IDS", "__version__", "register_envs"]
