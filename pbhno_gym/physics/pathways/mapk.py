"""MAPK cascade (ODE only): eqs. (A8)-(A10), with an optional negative-feedback variant.

    dX/dt = k1' U (1 - X) - k2 X           X: active Raf (fraction)
    dY/dt = k3' X (1 - Y) - k4 Y           Y: active MEK (fraction)
    dZ/dt = k5 Y (1 - Z) - k6 Z            Z: active ERK (fraction), the phenotype

    k3' = k3 / (1 + I / IC50_mek)          MEK inhibitor dose I lowers k3 (e.g. trametinib)
    k1' = k1 / (1 + (Z / K_fb)^2)          feedback variant only: ERK inhibits upstream (SOS/Raf)

U is the stimulus (e.g. EGF). Without feedback the steady state is closed-form:
X* = k1 U / (k1 U + k2), Y* = k3' X* / (k3' X* + k4), Z* = k5 Y* / (k5 Y* + k6).
The negative-feedback loop follows Kholodenko (Eur J Biochem 2000).
"""

from __future__ import annotations

import torch

from ..params import ControlSpec, ParamSet, ParamSpec
from .base import Pathway

P = ParamSpec
_BASE = [
    P("k1", 1.0, "1/(a.u. min)", "Raf activation per unit stimulus"),
    P("k2", 1.0, "1/min", "Raf deactivation"),
    P("k3", 1.0, "1/min", "MEK activation by Raf"),
    P("k4", 0.5, "1/min", "MEK deactivation"),
    P("k5", 1.0, "1/min", "ERK activation by MEK"),
    P("k6", 0.5, "1/min", "ERK deactivation"),
    P("IC50_mek", 1.0, "uM", "MEK inhibitor dose halving k3"),
]
MAPK_PARAMS = ParamSet(_BASE)
MAPK_FB_PARAMS = ParamSet(_BASE + [P("K_fb", 0.3, "1", "active ERK halving Raf activation")])


class MAPK(Pathway):
    """Three-tier phosphorylation cascade, one well-mixed compartment per cell, no field."""

    name = "mapk"
    species = ("X", "Y", "Z")
    stoich_table = (
        ("X_activation", {"X": 1}),
        ("X_deactivation", {"X": -1}),
        ("Y_activation", {"Y": 1}),
        ("Y_deactivation", {"Y": -1}),
        ("Z_activation", {"Z": 1}),
        ("Z_deactivation", {"Z": -1}),
    )
    inhibitors = (
        ControlSpec("stimulus", "a.u.", 0.0, 2.0, "upstream stimulus U (e.g. EGF)"),
        ControlSpec("mek_inhibitor", "uM", 0.0, 10.0, "MEK inhibitor dose lowering k3"),
    )
    ligand_pulse = None
    has_field = False
    phenotype = ("Z",)
    upper_bound = 1.0

    def __init__(self, feedback: bool = False) -> None:
        self.feedback = bool(feedback)
        self.params = MAPK_FB_PARAMS if self.feedback else MAPK_PARAMS
        if self.feedback:
            self.name = "mapk_feedback"
        super().__init__()

    def _k1(self, z, th):
        if self.feedback:
            return th["k1"] / (1 + (z / th["K_fb"]) ** 2)
        return th["k1"]

    def rate_expressions(self, x, ell, th, u):
        X, Y, Z = x["X"], x["Y"], x["Z"]
        U = u.get("stimulus", 0.0)
        k3 = th["k3"] / (1 + u.get("mek_inhibitor", 0.0) / th["IC50_mek"])
        return [
            self._k1(Z, th) * U * (1 - X),
            th["k2"] * X,
            k3 * X * (1 - Y),
            th["k4"] * Y,
            th["k5"] * Y * (1 - Z),
            th["k6"] * Z,
        ]

    def loss_rates(self, x, ell, th, u):
        """Also bound the inactive pools 1 - X, 1 - Y, 1 - Z, which activation consumes."""
        base = super().loss_rates(x, ell, th, u)
        v = self.fluxes(x, ell, th, u)
        inactive = (1 - x).clamp_min(1e-6)
        act = torch.stack([v[..., 0], v[..., 2], v[..., 4]], -1) / inactive
        return torch.maximum(base, act)

    def steady_state(self, th, stimulus, inhibitor=0.0):
        """Closed-form steady state (no-feedback variant only): (B, 3)."""
        if self.feedback:
            raise ValueError("steady_state: closed form exists only without feedback")
        k3 = th["k3"] / (1 + inhibitor / th["IC50_mek"])
        a = th["k1"] * stimulus
        xs = a / (a + th["k2"])
        ys = k3 * xs / (k3 * xs + th["k4"])
        zs = th["k5"] * ys / (th["k5"] * ys + th["k6"])
        return torch.cat([xs, ys, zs], -1)

    def initial_state(self, th, n_cells):
        b = th["k1"].shape[0]
        return th["k1"].new_zeros(b, n_cells, 3)
