"""Ground truth: geometry, ligand transport, pathway kinetics and the coupled simulator.

This subpackage imports nothing else of pbhno_gym: the physics knows nothing of learning or gyms.
"""

from .geometry import CellLayout, Grid, lattice, no_field, two_cell, wnt_tissue
from .params import ControlSpec, Parameters, ParamSet, ParamSpec
from .pathways import MAPK, PATHWAYS, Notch, Pathway, Wnt, get_pathway
from .simulator import SimState, Simulator
from .transport import SpectralOperator, laplacian

__all__ = [
    "CellLayout",
    "Grid",
    "lattice",
    "no_field",
    "two_cell",
    "wnt_tissue",
    "ControlSpec",
    "Parameters",
    "ParamSet",
    "ParamSpec",
    "MAPK",
    "PATHWAYS",
    "Notch",
    "Pathway",
    "Wnt",
    "get_pathway",
    "SimState",
    "Simulator",
    "SpectralOperator",
    "laplacian",
]
