"""Hidden mechanisms: kinetic terms a world has and the planning skeleton lacks.

An "unknown world" runs its pathway plus some of these terms, while agents plan through the base
pathway (the skeleton). Each mechanism adds parameters with documented log-normal priors, drawn
with the world's other parameters. :func:`with_mechanisms` returns the base pathway extended by
the named mechanisms: the same species, reactions, controls and phenotype, the base parameters
first (so the skeleton's vector is a prefix of the world's) and the mechanisms' after them.

Registry (``MECHANISMS[pathway][name]``):

* ``mapk.erk_feedback``: active ERK inhibits upstream activation (SOS/Raf), Kholodenko (Eur J
  Biochem 2000); Raf activation ``k1 U (1 - X)`` becomes ``k1 U (1 - X) / (1 + (Z / K_fb)^2)``,
  exactly the kinetics of ``MAPK(feedback=True)`` (pathway ``mapk_feedback``).
  ``K_fb ~ logN(log 0.3, 0.5^2)`` (fraction of active ERK).
* ``wnt.ligand_sink``: a Notum/Dkk-like target-induced ligand sink on each cell's membrane; the
  field uptake on Gamma_i gains ``k_fb T_i`` (field term ``-k_fb T_i L``). Only the field sees it.
  ``k_fb ~ logN(log 5e-4, 0.5^2)`` 1/(nM min): at a half-on target (T ~ 25 nM) it removes ligand
  about as fast as receptor binding (0.01/min) and extracellular decay (0.015/min).
* ``notch.hes_autorepression``: Hes represses its own transcription (Hirata et al., Science
  2002); Hes synthesis ``alpha_H hill(N, K_H, 2)`` is divided by ``1 + (H / K_auto)^2``.
  ``K_auto ~ logN(log 15, 0.5^2)`` nM (the Hes-high receiver sits at ~30 nM without it).

Besides the registry, a generic family of *candidate* regulations, named
``regulation:<reaction>:<species>:<effect>:<n>`` (:func:`regulation_name`): reaction ``r``'s
flux is divided by ``1 + (s / K)^n`` (``effect="repress"``) or multiplied by it
(``"activate"``), with one new parameter ``K_<species>_<reaction>``. It is what PB-HNO's
mechanism distillation (:mod:`pbhno_gym.surrogate.distill`) proposes from a learned flux
modulation: ``erk_feedback`` is ``regulation:X_activation:Z:repress:2`` with ``K = K_fb``.
For pathways with a field, ``uptake:<species>`` (:func:`uptake_name`) adds a membrane ligand sink
``k s`` to each cell's uptake per unit ligand (parameter ``k_<species>_uptake``, 1/(nM min) per
unit of the species): ``ligand_sink`` is ``uptake:T`` with ``k = k_fb``. A candidate's nominal
value turns it all but off (``K = 1e3``, ``k = 1e-6``; prior sd 1.5 in log), so a world built
with it validates like the skeleton (a fixed-step simulator checks its stiffness at the nominal
parameters); fits always pass their own prior for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..params import ParamSet, ParamSpec
from .base import Pathway

__all__ = [
    "Mechanism",
    "MECHANISMS",
    "get_mechanism",
    "with_mechanisms",
    "mechanism_params",
    "regulation_name",
    "uptake_name",
    "REGULATION_EFFECTS",
]

Rates = list[Any]


@dataclass(frozen=True)
class Mechanism:
    """One hidden kinetic term: its extra parameters (with priors) and how it edits the pathway.

    ``rates(x, th, u, rates)`` returns edited reaction fluxes; ``uptake(x, th, u, base)`` the
    edited field sink per unit ligand. Both use plain arithmetic (torch and SymPy alike).
    """

    pathway: str
    name: str
    params: tuple[ParamSpec, ...]
    description: str
    rates: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], Rates], Rates] | None = None
    uptake: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], Any], Any] | None = None


def _erk_feedback(x, th, u, rates):
    out = list(rates)
    out[0] = rates[0] / (1 + (x["Z"] / th["K_fb"]) ** 2)  # X_activation
    return out


def _wnt_sink(x, th, u, base):
    return base + th["k_fb"] * x["T"]


def _hes_autorepression(x, th, u, rates):
    out = list(rates)
    out[10] = rates[10] / (1 + (x["H"] / th["K_auto"]) ** 2)  # H_synthesis
    return out


P = ParamSpec
MECHANISMS: dict[str, dict[str, Mechanism]] = {
    "mapk": {
        "erk_feedback": Mechanism(
            "mapk",
            "erk_feedback",
            (P("K_fb", 0.3, "1", "active ERK halving Raf activation (negative feedback)"),),
            "ERK -> MAPKKK negative feedback: k1 U (1 - X) / (1 + (Z / K_fb)^2)",
            rates=_erk_feedback,
        ),
    },
    "wnt": {
        "ligand_sink": Mechanism(
            "wnt",
            "ligand_sink",
            (P("k_fb", 5e-4, "1/(nM min)", "target-induced (Notum/Dkk-like) membrane ligand sink"),),
            "target-induced ligand sink: field uptake on Gamma_i gains k_fb T_i",
            uptake=_wnt_sink,
        ),
    },
    "notch": {
        "hes_autorepression": Mechanism(
            "notch",
            "hes_autorepression",
            (P("K_auto", 15.0, "nM", "Hes level halving its own synthesis (autorepression)"),),
            "Hes autorepression: H synthesis divided by 1 + (H / K_auto)^2",
            rates=_hes_autorepression,
        ),
    },
}


REGULATION_EFFECTS = ("repress", "activate")


def regulation_name(reaction: str, species: str, effect: str, n: int) -> str:
    """The name of the candidate regulation of ``reaction`` by ``species`` (module docstring)."""
    return f"regulation:{reaction}:{species}:{effect}:{int(n)}"


def _parse(pathway: str, name: str, form: str) -> tuple[Pathway, list[str]]:
    """``name``'s parts after the family, checked against ``form`` (e.g. ``uptake:<species>``),
    the pathway instance, and the species part (ValueError naming what is wrong)."""
    from .registry import PATHWAYS  # lazily: the pathway classes import torch

    parts = name.split(":")
    if len(parts) != form.count(":") + 1:
        raise ValueError(f"mechanism {name!r}: expected {form}")
    if pathway not in PATHWAYS:
        raise ValueError(f"mechanism {name!r}: unknown pathway {pathway!r}")
    pw = PATHWAYS[pathway]()
    species = parts[form.split(":").index("<species>")]
    if species not in pw.species:
        known = ", ".join(pw.species)
        raise ValueError(f"mechanism {name!r}: no species {species!r} in {pathway} ({known})")
    return pw, parts[1:]


@functools.lru_cache(maxsize=256)
def _regulation(pathway: str, name: str) -> Mechanism:
    """Parse and build a ``regulation:...`` mechanism (ValueError naming what is wrong)."""
    pw, (reaction, species, effect, n_txt) = _parse(
        pathway, name, "regulation:<reaction>:<species>:<effect>:<n>"
    )
    if reaction not in pw.reactions:
        known = ", ".join(pw.reactions)
        raise ValueError(f"mechanism {name!r}: no reaction {reaction!r} in {pathway} ({known})")
    if effect not in REGULATION_EFFECTS:
        raise ValueError(f"mechanism {name!r}: effect must be one of {REGULATION_EFFECTS}, got {effect!r}")
    if not n_txt.isdigit() or not 1 <= int(n_txt) <= 8:
        raise ValueError(f"mechanism {name!r}: Hill exponent must be an integer in 1..8, got {n_txt!r}")
    r, n, k = pw.reactions.index(reaction), int(n_txt), f"K_{species}_{reaction}"

    def rates(x, th, u, fluxes):
        out = list(fluxes)
        q = 1 + (x[species] / th[k]) ** n
        out[r] = fluxes[r] / q if effect == "repress" else fluxes[r] * q
        return out

    verb = "halving" if effect == "repress" else "doubling"
    law = f"{reaction} {'/' if effect == 'repress' else 'x'} (1 + ({species} / {k})^{n})"
    return Mechanism(
        pathway,
        name,
        (P(k, 1e3, f"unit of {species}", f"{species} level {verb} {reaction}", prior_sigma=1.5),),
        f"candidate regulation: {law}",
        rates=rates,
    )


def uptake_name(species: str) -> str:
    """The name of the candidate membrane ligand sink proportional to ``species``."""
    return f"uptake:{species}"


@functools.lru_cache(maxsize=64)
def _uptake(pathway: str, name: str) -> Mechanism:
    """Parse and build an ``uptake:<species>`` mechanism (ValueError naming what is wrong)."""
    pw, (species,) = _parse(pathway, name, "uptake:<species>")
    if not pw.has_field:
        raise ValueError(f"mechanism {name!r}: {pathway} has no ligand field to take up")
    k = f"k_{species}_uptake"

    def uptake(x, th, u, base):
        return base + th[k] * x[species]

    unit = f"1/(nM min) per unit of {species}"
    return Mechanism(
        pathway,
        name,
        (P(k, 1e-6, unit, f"membrane ligand sink per unit {species}", prior_sigma=1.5),),
        f"candidate ligand sink: field uptake on Gamma_i gains {k} {species}_i",
        uptake=uptake,
    )


def get_mechanism(pathway: str, name: str) -> Mechanism:
    """The registered mechanism ``name`` of ``pathway``, or a candidate ``regulation:...`` or
    ``uptake:...`` one (ValueError listing the known ones)."""
    if name.startswith("regulation:"):
        return _regulation(pathway, name)
    if name.startswith("uptake:"):
        return _uptake(pathway, name)
    known = MECHANISMS.get(pathway, {})
    if name not in known:
        raise ValueError(
            f"unknown mechanism {name!r} for pathway {pathway!r}; known: {', '.join(known) or 'none'}"
            " (or a candidate regulation:<reaction>:<species>:<effect>:<n> or uptake:<species>)"
        )
    return known[name]


def mechanism_params(base: ParamSet, pathway: str, names: Sequence[str]) -> ParamSet:
    """The world's parameter set: ``base`` then each mechanism's parameters, in order."""
    extra = [p for n in names for p in get_mechanism(pathway, n).params]
    return ParamSet(list(base.specs) + extra)


def with_mechanisms(base: Pathway, names: Sequence[str]) -> Pathway:
    """``base`` extended by the mechanisms ``names`` (``base`` itself when there are none).

    The result is an instance of a subclass of ``type(base)`` sharing its state, with the
    world's parameter set and a name such as ``"wnt+ligand_sink"``.
    """
    names = tuple(names)
    if not names:
        return base
    if len(set(names)) != len(names):
        raise ValueError(f"mechanisms listed twice in {list(names)}")
    mechs = tuple(get_mechanism(base.name, n) for n in names)
    cls = type(base)

    class WithMechanisms(cls):  # type: ignore[misc, valid-type]
        mechanisms = mechs

        def rate_expressions(self, x, ell, th, u):
            rates = cls.rate_expressions(self, x, ell, th, u)
            for m in self.mechanisms:
                if m.rates is not None:
                    rates = m.rates(x, th, u, rates)
            return rates

        def uptake_expression(self, x, th, u):
            v = cls.uptake_expression(self, x, th, u)
            for m in self.mechanisms:
                if m.uptake is not None:
                    v = m.uptake(x, th, u, v)
            return v

        def steady_state(self, *args, **kwargs):
            raise ValueError(f"steady_state: no closed form with mechanisms {list(names)}")

    WithMechanisms.__name__ = WithMechanisms.__qualname__ = f"{cls.__name__}With{len(mechs)}Mechanisms"
    world = WithMechanisms.__new__(WithMechanisms)
    world.__dict__.update(base.__dict__)
    world.params = mechanism_params(base.params, base.name, names)
    world.name = "+".join((base.name, *names))
    world.base_name = base.name
    return world
