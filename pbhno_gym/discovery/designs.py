"""The design catalogue: the named :class:`~.design.Design` s, registered in the registry of
:mod:`.design` (the ``pbhno_gym.discovery`` package imports this module, so they are there).

``get_design(name)`` looks one up (optionally with fields changed), ``register_design(d)`` adds
one (a new inverse problem is one registration, usable by name in ``pbhno reproduce --design``,
``pbhno identify --design`` and the sweeps), ``available_designs()`` lists the names. The logic
(datasets, the true model) lives in :mod:`.design`.
"""

from __future__ import annotations

from dataclasses import replace

from .design import DESIGNS, Design, available_designs, get_design, register_design

__all__ = ["DESIGNS", "available_designs", "get_design", "register_design"]

# ---------------------------------------------------------------------------- the catalogue
_NOTCH_SPARSE = Design(
    name="notch_sparse",
    env="pbhno/Notch-v1",
    description="Notch two-cell (paper Table I): NICD and Hes measured in both cells at 12 "
    "irregular times of a 24 h experiment, 20% additive noise, random ligand/GSI pulses",
    overrides={"layout": {"ny": 24, "nx": 40, "length_x": 80.0}},
    observed=("N", "H"),
    free=("k_on", "delta_N", "alpha_H", "K_H", "delta_H"),
    n_traj=3,
    n_times=12,
    noise=0.2,
)
for _d in [
    _NOTCH_SPARSE,
    replace(
        _NOTCH_SPARSE,
        name="notch_rich",
        description="Notch two-cell, informative: NICD and Hes in both cells at 24 irregular "
        "times of each of 6 experiments, 5% additive noise (a design whose Cramer-Rao bound "
        "allows <= 5% MAPE)",
        n_traj=6,
        n_times=24,
        noise=0.05,
    ),
    replace(
        _NOTCH_SPARSE,
        name="notch_autorepression",
        description="Notch two-cell with model error: the data come from Notch with Hes "
        "autorepression (mechanism hes_autorepression, K_auto = 15 nM fixed; Hes synthesis divided "
        "by 1 + (H / K_auto)^2), every method but the generator's MAP is handed the plain Notch "
        "skeleton; otherwise notch_sparse (N and H in both cells at 12 irregular times of 24 h, 20% "
        "noise, 3 experiments)",
        hidden=("hes_autorepression",),
        hidden_parameters={"K_auto": 15.0},
    ),
    Design(
        name="wnt_edges",
        env="pbhno/Wnt-v1",
        description="Wnt morphogen field (paper Fig. 3): 16 ligand samples along the tissue edge "
        "and the target gene T in every cell, 12 irregular times over 8 h, 5% noise",
        overrides={"layout": {"ny": 32, "nx": 32, "length_x": 128.0, "rows": 3, "cols": 3}},
        observed=("T",),
        ligand_samples=16,
        free=("D_L", "lambda_L", "s0", "kappa_b"),
        n_traj=2,
        n_times=12,
        noise=0.05,
    ),
    Design(
        name="wnt_tiny",
        env="pbhno/Wnt-v1",
        description="Wnt on a 16 x 16 grid with one cell: 12 ligand samples along the edge and T, 12 "
        "irregular times of 4 h, 2% noise; D_L and lambda_L free (the tiny PINN-PDE problem)",
        overrides={
            "horizon": 24,
            "layout": {
                "ny": 16,
                "nx": 16,
                "length_x": 64.0,
                "rows": 1,
                "cols": 1,
                "cell_size": 16.0,
                "source_width": 8.0,
            },
        },
        observed=("T",),
        ligand_samples=12,
        free=("D_L", "lambda_L"),
        n_traj=1,
        n_times=12,
        noise=0.02,
    ),
    Design(
        name="mapk_tiny",
        env="pbhno/MAPK-v0",
        description="MAPK cascade, one cell, X/Y/Z measured at 20 irregular minutes of 60, "
        "2% noise, random stimulus/inhibitor pulses (a fast test problem)",
        observed=("X", "Y", "Z"),
        free=("k1", "k2", "k3", "k4"),
        n_traj=2,
        n_times=20,
        noise=0.02,
        pulse={"p_on": 0.3, "p_off": 0.2},
    ),
    Design(
        name="mapk_smooth",
        env="pbhno/MAPK-v0",
        description="MAPK cascade with slow kinetics (time constants 5-15 min), one cell, constant "
        "stimulus per trajectory (no inhibitor), X/Y measured at 10 irregular times of 60 min, 2% "
        "noise: the tiny smooth problem every baseline must solve",
        overrides={
            "horizon": 30,
            "control_interval": 2.0,
            "parameters": {"k1": 0.05, "k2": 0.05, "k3": 0.1, "k4": 0.05},
        },
        observed=("X", "Y"),
        free=("k1", "k2", "k3", "k4"),
        controls=("stimulus",),
        schedule="constant",
        n_traj=2,
        n_times=10,
        noise=0.02,
    ),
    Design(
        name="wnt_sink",
        env="pbhno/Wnt-v1",
        description="Wnt with model error: the data come from a tissue with a target-induced "
        "(Notum/Dkk-like) membrane ligand sink (mechanism ligand_sink, k_fb = 5e-4 1/(nM min) "
        "fixed), every method but the generator's MAP is handed the plain Wnt skeleton; 32 x 32 "
        "grid, 3 x 3 cells, 16 ligand samples along the edge and T in every cell at 12 irregular "
        "times of 8 h, 5% noise, 3 experiments; D_L, lambda_L, s0, kappa_b free",
        overrides={"layout": {"ny": 32, "nx": 32, "length_x": 128.0, "rows": 3, "cols": 3}},
        observed=("T",),
        ligand_samples=16,
        free=("D_L", "lambda_L", "s0", "kappa_b"),
        hidden=("ligand_sink",),
        hidden_parameters={"k_fb": 5e-4},
        n_traj=3,
        n_times=12,
        noise=0.05,
    ),
    Design(
        name="mapk_feedback",
        env="pbhno/MAPK-v0",
        description="MAPK cascade with model error: the data come from the cascade plus ERK -> "
        "MAPKKK negative feedback (mechanism erk_feedback, K_fb = 0.3 fixed), every method is "
        "handed the plain cascade (the skeleton); one cell, X/Y/Z at 20 irregular minutes of 60 "
        "in each of 3 experiments, 2% noise, random stimulus/inhibitor pulses; k1-k6 free "
        "(IC50_mek and the hidden K_fb are not estimated)",
        observed=("X", "Y", "Z"),
        free=("k1", "k2", "k3", "k4", "k5", "k6"),
        hidden=("erk_feedback",),
        hidden_parameters={"K_fb": 0.3},
        n_traj=3,
        n_times=20,
        noise=0.02,
        pulse={"p_on": 0.3, "p_off": 0.2},
    ),
]:
    register_design(_d)
del _d
