"""Wnt (morphogen) kinetics: eq. (A6)-(A7), a reduced canonical Wnt/beta-catenin module.

Field (A6): dL/dt = D lap L - lambda L - sum_i kappa_b 1_Gamma_i k_on' R_i L + (s0 + u) 1_source.
Per cell (species R free Frizzled/LRP6, C ligand-receptor signalosome, B beta-catenin,
T target-gene reporter, e.g. Axin2 or a TOPflash reporter):

    dR/dt = alpha_R - k_on' ell R + k_off C - delta_R R
    dC/dt = k_on' ell R - (k_off + k_int) C                  (receptor internalisation)
    dB/dt = alpha_B - delta_B B - k_dc B / (1 + C / K_C)     (signalosome inhibits destruction)
    dT/dt = alpha_T B^2 / (K_T^2 + B^2) - delta_T T
    k_on' = k_on / (1 + a / K_A)                             (extracellular antagonist dose a)

Sources: the destruction-complex core follows Lee et al. (PLoS Biol 2003) reduced to one
effective degradation flux inhibited by the receptor complex (as in Goentoro & Kirschner,
Mol Cell 2009); receptor binding and internalisation are mass action; the antagonist acts like
Dkk1/sFRP by lowering effective binding. Transport scales follow Kicheva et al. (Science 2007),
who measured D ~ 0.1 um^2/s and decay ~ 2.5e-4 /s for Dpp, a decay length ~ 20 um.
"""

from __future__ import annotations

from ..params import ControlSpec, ParamSet, ParamSpec
from .base import Pathway, hill

P = ParamSpec
WNT_PARAMS = ParamSet(
    [
        P("D_L", 6.0, "um^2/min", "Wnt diffusion coefficient"),
        P("lambda_L", 0.015, "1/min", "extracellular Wnt decay"),
        P("kappa_b", 0.1, "1", "membrane binding (field sink per unit receptor binding)"),
        P("s0", 1.0, "nM/min", "basal secretion rate in the source domain"),
        P("alpha_R", 0.1, "nM/min", "receptor synthesis"),
        P("k_on", 0.01, "1/(nM min)", "Wnt-receptor binding"),
        P("k_off", 0.01, "1/min", "complex dissociation"),
        P("k_int", 0.02, "1/min", "receptor-complex internalisation"),
        P("delta_R", 0.01, "1/min", "free receptor turnover"),
        P("alpha_B", 0.5, "nM/min", "beta-catenin synthesis"),
        P("delta_B", 0.01, "1/min", "destruction-complex-independent beta-catenin decay"),
        P("k_dc", 0.5, "1/min", "destruction-complex degradation of beta-catenin"),
        P("K_C", 1.0, "nM", "signalosome level halving destruction-complex activity"),
        P("alpha_T", 1.0, "nM/min", "maximal target-gene expression"),
        P("K_T", 2.0, "nM", "beta-catenin level for half-maximal target expression"),
        P("delta_T", 0.02, "1/min", "target-gene product turnover"),
        P("K_A", 1.0, "nM", "antagonist dose halving effective binding"),
    ]
)


class Wnt(Pathway):
    """Morphogen gradient read out by a beta-catenin target gene in a field of cells."""

    name = "wnt"
    species = ("R", "C", "B", "T")
    stoich_table = (
        ("R_synthesis", {"R": 1}),
        ("binding", {"R": -1, "C": 1}),
        ("unbinding", {"R": 1, "C": -1}),
        ("internalisation", {"C": -1}),
        ("R_turnover", {"R": -1}),
        ("B_synthesis", {"B": 1}),
        ("B_decay", {"B": -1}),
        ("B_destruction", {"B": -1}),
        ("T_synthesis", {"T": 1}),
        ("T_turnover", {"T": -1}),
    )
    params = WNT_PARAMS
    inhibitors = (
        ControlSpec(
            "antagonist", "nM", 0.0, 10.0, "extracellular antagonist (Dkk1/sFRP-like) lowering binding"
        ),
    )
    ligand_pulse = ControlSpec("ligand", "nM/min", 0.0, 4.0, "additional Wnt delivered in the source domain")
    has_field = True
    phenotype = ("T",)

    def _kon(self, th, u):
        return th["k_on"] / (1 + u.get("antagonist", 0.0) / th["K_A"])

    def rate_expressions(self, x, ell, th, u):
        R, C, B, T = (x[s] for s in self.species)
        kon = self._kon(th, u)
        return [
            th["alpha_R"],
            kon * ell * R,
            th["k_off"] * C,
            th["k_int"] * C,
            th["delta_R"] * R,
            th["alpha_B"],
            th["delta_B"] * B,
            th["k_dc"] * B / (1 + C / th["K_C"]),
            th["alpha_T"] * hill(B, th["K_T"], 2),
            th["delta_T"] * T,
        ]

    def uptake_expression(self, x, th, u):
        return th["kappa_b"] * self._kon(th, u) * x["R"]

    def field_coefficients(self, th):
        return th["D_L"], th["lambda_L"]

    def basal_source(self, th):
        return th["s0"]

    def initial_state(self, th, n_cells):
        """Cells before the morphogen arrives: free receptors, basal beta-catenin and target."""
        import torch

        r = th["alpha_R"] / th["delta_R"]
        b = th["alpha_B"] / (th["delta_B"] + th["k_dc"])
        t = th["alpha_T"] * hill(b, th["K_T"], 2) / th["delta_T"]
        x = torch.stack([r, torch.zeros_like(r), b, t], -1)
        return x.expand(-1, n_cells, -1).clone()
