"""The package's layers point one way, and no module imports another that imports it back.

Read from the source (ast), so the rules hold for every import, at the top of a module or inside a function:

    errors, units, metrics, skeleton, record, outfile   the bottom: the run record and plain helpers
    store                                               the run store, beside the record
    data -> models -> train -> sweep                    the training side, each may use those left of it
    laws                                                the analysis engine: only the bottom
    forecast                                            the use case: laws, store, models (FLOP tables)
    integrations, reporting, dashboard, cli             the faces and adapters on top
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gaitforecast"
BOTTOM = {"errors", "units", "metrics", "skeleton", "record", "outfile", "__init__"}

# area -> areas it may import (besides itself and the bottom)
ALLOWED = {
    "store": set(),
    "data": set(),
    "models": {"data"},
    "train": {"data", "models"},
    "sweep": {"data", "models", "train", "store", "laws", "forecast"},
    "laws": set(),
    "forecast": {"laws", "store", "models"},
    "integrations": {"store"},
    "reporting": {"store", "laws", "forecast", "dashboard"},
    "dashboard": {"store", "laws", "forecast"},
    "cli": {"store", "data", "models", "train", "sweep", "laws", "forecast", "integrations", "reporting", "dashboard"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    base = PACKAGE.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _targets(node: ast.AST) -> list[str]:
    """gaitforecast modules an import statement loads (a name imported from a package is its submodule if any)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{a.name}" if _exists(f"{node.module}.{a.name}") else node.module for a in node.names]
    else:
        return []
    out = []
    for name in names:
        while name and not _exists(name):
            name = name.rpartition(".")[0]
        if name.startswith("gaitforecast"):
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        graph[name] = {t for node in ast.walk(tree) if id(node) not in type_only
                       for t in _targets(node) if t != name}
    return graph


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = _graph()


def test_every_area_is_known():
    areas = {_area(m) for m in GRAPH} - BOTTOM
    assert areas == set(ALLOWED), "add the new area to ALLOWED (and to the README's Layout) deliberately"


@pytest.mark.parametrize("area", sorted(ALLOWED))
def test_layers_point_one_way(area):
    wrong = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if _area(m) == area for t in targets
                   if _area(t) not in BOTTOM | ALLOWED[area] | {area})
    assert not wrong, wrong


def test_the_bottom_imports_only_the_bottom():
    wrong = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if _area(m) in BOTTOM for t in targets
                   if _area(t) not in BOTTOM)
    assert not wrong, wrong


def test_laws_know_nothing_of_models_train_or_sweep():
    laws = {t for m, targets in GRAPH.items() if _area(m) == "laws" for t in targets}
    assert not {t for t in laws if _area(t) in ("models", "train", "sweep", "data", "store")}


def test_no_import_cycles_between_modules():
    """A package's __init__ re-exporting its submodules is not a cycle; a submodule importing a sibling that
    imports it back (at the top or inside a function) is."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH.get(todo.pop(), ()):
                if nxt not in seen and not start.startswith(nxt + "."):  # importing a submodule runs its package
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(f"{m} <-> {t}" for m, targets in GRAPH.items() for t in targets
                    if not t.startswith(m + ".") and not m.startswith(t + ".") and m in reach(t) and m < t)
    assert not cycles, cycles
