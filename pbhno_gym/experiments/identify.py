"""``pbhno identify``: structural and practical identifiability of a design (or a pathway).

Structural: the observability-rank test on the pathway's reduced one-cell ODE (membrane ligand
a known input), twice - with every kinetic parameter unknown, and with only the design's free
parameters unknown (the others known, as in the design). Practical: at the true parameters of
one simulated dataset of the design, the Fisher spectrum, CRLB, Appendix-B diagnostics and,
with ``profile=True``, pyPESTO profile-likelihood intervals. Writes ``identify.md``,
``identify.json`` and ``identify.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils.io import atomic_write_json, atomic_write_text

__all__ = ["structural_for", "run_identify"]


def structural_for(
    pathway_name: str,
    observed: list[str],
    free: list[str] | None = None,
    ell: str | float = "input",
    method: str = "taylor",
    seed: int = 0,
):
    """Structural result for a pathway's reduced model (``free=None``: every parameter unknown)."""
    from ..identifiability.structural import observability_test, pathway_ode
    from ..physics import get_pathway

    model, missing = pathway_ode(get_pathway(pathway_name), observed, free, ell=ell)
    return observability_test(model, method=method, seed=seed, not_in_model=missing)


def run_identify(
    design: str | None = None,
    pathway: str | None = None,
    observed: list[str] | None = None,
    seed: int = 0,
    profile: bool = False,
    structural: bool = True,
    practical: bool = True,
    out: str | Path = "docs/results/identify",
    method: str = "taylor",
) -> dict:
    """Run the analyses and write the report; returns a JSON-able summary."""
    from ..discovery.designs import get_design

    parts, summary = [], {}
    if design is not None:
        d = get_design(design)
        m_env = d.spec()
        pathway = m_env.pathway
        observed = list(d.observed) if observed is None else observed
        free = list(d.free)
        title = f"design `{design}`"
    else:
        if pathway is None or not observed:
            raise ValueError("identify: give a design, or a pathway and the observed species")
        free = None
        title = f"pathway `{pathway}` observing {', '.join(observed)}"
        practical = False
    parts.append(f"# Identifiability of {title}\n")
    if structural:
        if not observed:
            parts.append(
                "Structural: the design measures no species (ligand only); "
                "the reduced cell model has no output.\n"
            )
        else:
            r_all = structural_for(pathway, observed, None, method=method, seed=seed)
            parts += [
                "## Structural (reduced one-cell ODE, membrane ligand a known input)",
                "",
                "### Every kinetic parameter unknown",
                "",
                r_all.table(),
                "",
            ]
            summary["structural_all"] = r_all.to_dict()
            if free is not None:
                r_free = structural_for(pathway, observed, free, method=method, seed=seed)
                parts += ["### Only the design's free parameters unknown", "", r_free.table(), ""]
                summary["structural_free"] = r_free.to_dict()
    if practical:
        from ..discovery.design import make_dataset
        from ..discovery.problem import SimulatorProblem
        from ..identifiability.practical import practical_report

        ds = make_dataset(design, seed)
        pr = SimulatorProblem(ds)
        true = np.asarray(ds.meta["true_log_theta"])[pr.model.free_idx]
        rep = practical_report(pr, true, profile=profile)
        out_p = Path(out)
        rep.plot(out_p / "identify.png")
        parts += [
            "## Practical (Fisher information at the true parameters of one dataset)",
            "",
            f"Dataset: seed {seed}, {pr.n_data} measurements. Sensitivities by forward-mode autograd "
            "through the float64 simulator.",
            "",
            rep.table(),
            "",
            "Appendix-B weights (mean 1) emphasise the measurement times most informative about weak "
            f"parameters: max weight {rep.diagnostics['weights'].max():.2f}.",
            "",
            "![](identify.png)",
            "",
        ]
        summary["practical"] = rep.to_dict()
    out_p = Path(out)
    atomic_write_text(out_p / "identify.md", "\n".join(parts))
    atomic_write_json(out_p / "identify.json", summary)
    return {"out": str(out_p), **{k: True for k in summary}}
