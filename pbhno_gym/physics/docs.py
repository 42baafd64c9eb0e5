"""Markdown tables of each pathway's species, reactions, parameters and controls.

``docs/models.md`` embeds these between ``<!-- table:NAME -->`` markers; ``scripts/gen_docs.py``
regenerates them and a test checks the docs match the code, so the numbers live in one place.
"""

from __future__ import annotations

import re

from .pathways import get_pathway

PATHWAY_TABLES = ("notch", "wnt", "mapk", "mapk_feedback")


def pathway_table(name: str) -> str:
    pw = get_pathway(name)
    lines = [
        f"Species: {', '.join(pw.species)} (phenotype: {', '.join(pw.phenotype)}).",
        "",
        "| parameter | nominal | unit | meaning | prior |",
        "|---|---:|---|---|---|",
    ]
    for p in pw.params.specs:
        lines.append(
            f"| `{p.name}` | {p.nominal:g} | {p.unit} | {p.description} | "
            f"logN(log {p.nominal:g}, {p.prior_sigma:g}^2) |"
        )
    lines += ["", "| control | unit | bounds | meaning |", "|---|---|---|---|"]
    specs = list(pw.inhibitors)
    if pw.ligand_pulse is not None:
        specs.insert(0, pw.ligand_pulse)
    for c in specs:
        name_ = c.name + ("_<region>" if c is pw.ligand_pulse else "")
        lines.append(f"| `{name_}` | {c.unit} | [{c.low:g}, {c.high:g}] | {c.description} |")
    return "\n".join(lines)


def render(text: str) -> str:
    """Replace every ``<!-- table:NAME -->...<!-- /table -->`` block with the current table."""

    def sub(m: re.Match) -> str:
        return f"<!-- table:{m.group(1)} -->\n{pathway_table(m.group(1))}\n<!-- /table -->"

    return re.sub(r"<!-- table:(\w+) -->.*?<!-- /table -->", sub, text, flags=re.S)
