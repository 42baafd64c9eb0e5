"""The package's import graph: no cycle (function-local imports included), and ``physics/`` at the bottom.

Every module of ``pbhno_gym`` is parsed with :mod:`ast` (nothing is imported); each ``import``
and ``from ... import`` of a ``pbhno_gym`` module, at any depth of the file (a lazy import inside
a function still couples the two modules in design), becomes an edge to the named module, or to
the submodule when ``from package import name`` names one. A package's ``__init__`` is a node of
its own: importing ``pbhno_gym.a.b`` does not add an edge to ``pbhno_gym.a``. Imports under
``if TYPE_CHECKING:`` are left out: they never run and only name a type for annotations.
"""

from __future__ import annotations

import ast
import pkgutil
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pbhno_gym

ROOT = "pbhno_gym"


def _modules() -> dict[str, Path]:
    """Dotted name -> source file of every module in the package (packages as their __init__)."""
    pkg_dir = Path(pbhno_gym.__file__).parent
    out = {ROOT: pkg_dir / "__init__.py"}
    for info in pkgutil.walk_packages([str(pkg_dir)], prefix=ROOT + "."):
        rel = Path(*info.name.split(".")[1:])
        path = pkg_dir / rel / "__init__.py" if info.ispkg else (pkg_dir / rel).with_suffix(".py")
        out[info.name] = path
    return out


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_pkg else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``pbhno_gym`` modules it imports anywhere in its file."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, is_pkg, node)
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [target, *subs]
            for t in targets:
                while t and t not in mods and "." in t:  # ``import a.b.c`` of a name inside a module
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as e:
        return list(e.args[1])
    return []


def test_graph_sees_the_package():
    graph = import_graph()
    assert {"pbhno_gym.physics", "pbhno_gym.agents.registry", "pbhno_gym.discovery.registry"} <= set(graph)
    assert "pbhno_gym.agents.base" in graph["pbhno_gym.agents.reference"]
    assert "pbhno_gym.agents.sb3" in graph["pbhno_gym.agents.registry"]  # function-local imports count


def test_cycle_detector_names_the_modules():
    assert set(_find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == {"a", "b", "c"}
    assert _find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycle = _find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_physics_imports_nothing_else_of_the_package():
    graph = import_graph()
    bad = {
        f"{m} -> {d}"
        for m, deps in graph.items()
        if m.startswith("pbhno_gym.physics")
        for d in deps
        if not d.startswith("pbhno_gym.physics")
    }
    assert not bad, "physics/ must import only physics/: " + ", ".join(sorted(bad))
