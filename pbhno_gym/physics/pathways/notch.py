"""Notch (juxtacrine) kinetics: eqs. (A1)-(A5) of the paper, coupled through the ligand field.

Per cell i (species R receptor, D Delta ligand, C trans complex, N NICD, H Hes repressor):

    dR/dt = alpha_R - k_on ell R + k_off C - k_cis D R - delta_R R               (A1 + cis)
    dD/dt = alpha_D (1 + eta / (1 + H^2)) - k_cis D R - (delta_D + sigma) D        (A2)
    dC/dt = k_on ell R - (k_off + delta_C) C                                       (A3)
    dN/dt = alpha_N C / (1 + gsi / IC50_gsi) - delta_N N                            (A4)
    dH/dt = alpha_H N^2 / (K_H^2 + N^2) - delta_H H                                 (A5)

Coupling: each cell sheds Delta onto its membrane at rate sigma D_i (field source on Gamma_i);
receptors bind field ligand on Gamma_i with sink kappa_b k_on R_i L. Field: D_L lap L - lambda_L L.

Deviations from the paper's "example dynamics", and why: the cis term -k_cis D R appears in both
R and D (mutual inactivation, Sprinzak et al. 2010), where the paper wrote it in A2 only; the
paper's +k_off C in A2 is dropped (a dissociated trans complex frees the *receiver's* receptor,
not the sender's ligand); shedding sigma D is the ligand's route into the field. Without cis
inactivation a cell would be activated by its own shed ligand as strongly as its neighbour.
The gamma-secretase inhibitor (GSI) dose lowers NICD release with IC50_gsi.
"""

from __future__ import annotations

from ..params import ControlSpec, ParamSet, ParamSpec
from .base import Pathway, hill

P = ParamSpec
NOTCH_PARAMS = ParamSet(
    [
        P("alpha_R", 0.05, "nM/min", "Notch receptor synthesis"),
        P("k_on", 0.04, "1/(nM min)", "trans binding of field ligand to receptor"),
        P("k_off", 0.01, "1/min", "trans complex dissociation"),
        P("k_cis", 0.03, "1/(nM min)", "cis (mutual) inactivation of Delta and Notch"),
        P("delta_R", 0.005, "1/min", "receptor turnover"),
        P("alpha_D", 0.045, "nM/min", "basal Delta synthesis"),
        P("eta", 150.0, "1", "fold increase of Delta synthesis without Hes repression"),
        P("delta_D", 0.05, "1/min", "Delta turnover"),
        P("sigma", 0.05, "1/min", "Delta shedding/presentation into the extracellular field"),
        P("delta_C", 0.05, "1/min", "trans complex turnover"),
        P("alpha_N", 0.8, "1/min", "NICD release per complex (gamma-secretase cleavage)"),
        P("delta_N", 0.05, "1/min", "NICD turnover"),
        P("alpha_H", 1.8, "nM/min", "maximal Hes synthesis"),
        P("K_H", 1.5, "nM", "NICD level for half-maximal Hes synthesis"),
        P("delta_H", 0.05, "1/min", "Hes turnover"),
        P("D_L", 60.0, "um^2/min", "ligand diffusion coefficient in the extracellular field"),
        P("lambda_L", 0.1, "1/min", "extracellular ligand decay"),
        P("kappa_b", 1.0, "1", "membrane binding (field sink per unit receptor binding)"),
        P("IC50_gsi", 1.0, "uM", "GSI dose halving NICD release"),
    ]
)


class Notch(Pathway):
    """Notch lateral inhibition with field-mediated ligand exchange (two-cell or lattice)."""

    name = "notch"
    species = ("R", "D", "C", "N", "H")
    stoich_table = (
        ("R_synthesis", {"R": 1}),
        ("trans_binding", {"R": -1, "C": 1}),
        ("unbinding", {"R": 1, "C": -1}),
        ("cis_inactivation", {"R": -1, "D": -1}),
        ("R_turnover", {"R": -1}),
        ("D_synthesis", {"D": 1}),
        ("D_turnover_shedding", {"D": -1}),
        ("C_turnover", {"C": -1}),
        ("NICD_release", {"N": 1}),
        ("NICD_turnover", {"N": -1}),
        ("H_synthesis", {"H": 1}),
        ("H_turnover", {"H": -1}),
    )
    params = NOTCH_PARAMS
    inhibitors = (
        ControlSpec(
            "gsi", "uM", 0.0, 10.0, "gamma-secretase inhibitor (e.g. DAPT) dose lowering NICD release"
        ),
    )
    ligand_pulse = ControlSpec(
        "ligand", "nM/min", 0.0, 0.2, "exogenous Delta (e.g. Dll1-Fc or light-induced) release rate"
    )
    has_field = True
    phenotype = ("H",)

    def rate_expressions(self, x, ell, th, u):
        R, D, C, N, H = (x[s] for s in self.species)
        gsi = u.get("gsi", 0.0)
        return [
            th["alpha_R"],
            th["k_on"] * ell * R,
            th["k_off"] * C,
            th["k_cis"] * D * R,
            th["delta_R"] * R,
            th["alpha_D"] * (1 + th["eta"] / (1 + H**2)),
            (th["delta_D"] + th["sigma"]) * D,
            th["delta_C"] * C,
            th["alpha_N"] * C / (1 + gsi / th["IC50_gsi"]),
            th["delta_N"] * N,
            th["alpha_H"] * hill(N, th["K_H"], 2),
            th["delta_H"] * H,
        ]

    def uptake_expression(self, x, th, u):
        return th["kappa_b"] * th["k_on"] * x["R"]

    def emission_expression(self, x, th, u):
        return th["sigma"] * x["D"]

    def field_coefficients(self, th):
        return th["D_L"], th["lambda_L"]

    def initial_state(self, th, n_cells):
        """Unsignalled cells: R, D at their no-signal balance, no complex, NICD or Hes."""
        import torch

        a_r, a_d = th["alpha_R"], th["alpha_D"] * (1 + th["eta"])
        d_r, d_d, kc = th["delta_R"], th["delta_D"] + th["sigma"], th["k_cis"]
        # Solve alpha_R = (k_cis D + d_r) R, a_d = (k_cis R + d_d) D for the positive root.
        qa = kc * d_r
        qb = d_r * d_d + kc * (a_d - a_r)
        qc = -a_r * d_d
        r = (-qb + torch.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)
        d = a_d / (kc * r + d_d)
        z = torch.zeros_like(r)
        x = torch.stack([r, d, z, z, z], -1)  # (B, 1, S)
        return x.expand(-1, n_cells, -1).clone()
