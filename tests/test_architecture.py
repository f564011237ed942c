"""The package's shape: imports read with ``ast``, no circles, nothing pointing back up a layer.

Every import counts, also the lazy ones inside functions and those under ``TYPE_CHECKING``: a
circle that only type checking sees is still a circle for a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "entrypoint"
MAX_LINES = 400

# Lowest first. A module may import only from its own layer's lower neighbours: from a layer
# listed before its own, at every level of the tree. A new module must be placed here.
LAYERS: dict[str, list[set[str]]] = {
    "entrypoint": [
        {"errors", "env_reader", "bounded"},
        {"log"},
        {"heartbeat", "connection", "patience", "checks", "project"},
        {"capture"},
        {"schema"},  # the live schema against the models: --status and the steps read it
        {"wait"},
        {"migrate"},
        {"admin"},
        {"manage"},  # locked commands run inside the migrations' guard
        {"hooks"},
        {"config"},  # composes each step's own settings
        {"steps", "server"},
        {"cli"},
        {"management"},
        {"__main__"},
    ],
    "entrypoint.migrate": [
        {"config", "naming"},
        {"lock"},
        {"plan"},
        {"run"},
        {"direct"},
        {"step", "report", "status"},
    ],
    "entrypoint.schema": [
        {"config", "expected"},
        {"catalog"},
        {"check"},
    ],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(tree: ast.AST, known: dict[str, Path]) -> Iterator[str]:
    """The project's modules that a module's code imports (``from pkg import mod`` included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    yield full
                elif node.module in known:
                    yield node.module


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set(imported(ast.parse(path.read_text()), known))
        # A module's own package (its __init__ docstring) is no dependency.
        edges[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that ends where it started, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def child_of(package: str, module: str) -> str | None:
    """The name of the child of ``package`` that ``module`` lives in (None: outside it)."""
    if not module.startswith(package + "."):
        return None
    return module[len(package) + 1 :].split(".", maxsplit=1)[0]


def sibling_edges(package: str, edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Between the children of ``package``: A -> B when anything in A imports anything in B."""
    between: dict[str, set[str]] = {}
    for source, targets in edges.items():
        a = child_of(package, source)
        if a is None:
            continue
        for target in targets:
            b = child_of(package, target)
            if b is not None and b != a:
                between.setdefault(a, set()).add(b)
    return between


def packages() -> list[str]:
    return sorted(module_name(p.parent) for p in PACKAGE.rglob("__init__.py"))


class TestImports:
    def test_the_graph_sees_imports(self) -> None:
        """The reader itself: known edges are found (a broken reader would pass everything)."""
        edges = graph()
        assert "entrypoint.errors" in edges["entrypoint.cli"]
        assert "entrypoint.migrate.lock.waiting" in edges["entrypoint.migrate.run.guard"]

    def test_cycle_finder_finds_cycles(self) -> None:
        assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
        assert find_cycle({"a": {"b"}, "b": set()}) is None

    def test_no_module_cycle(self) -> None:
        assert find_cycle(graph()) is None

    @pytest.mark.parametrize("package", packages())
    def test_no_cycle_between_siblings(self, package: str) -> None:
        """Sub-packages and modules of one package depend on each other one way only."""
        cycle = find_cycle(sibling_edges(package, graph()))
        assert cycle is None, f"in {package}: {' -> '.join(cycle or [])}"

    @pytest.mark.parametrize("package", sorted(LAYERS))
    def test_imports_point_down(self, package: str) -> None:
        layers = LAYERS[package]
        rank = {name: i for i, layer in enumerate(layers) for name in layer}
        children = {child_of(package, m) for m in modules()} - {None}
        unplaced = sorted(str(c) for c in children if c not in rank)
        assert not unplaced, f"place {unplaced} in LAYERS[{package!r}]"
        upward = [
            f"{a} -> {b}"
            for a, targets in sibling_edges(package, graph()).items()
            for b in targets
            if rank[b] >= rank[a]
        ]
        assert not upward, f"imports that point up (or across) a layer in {package}: {upward}"


class TestSize:
    def test_modules_are_small(self) -> None:
        big = {
            str(p.relative_to(ROOT)): n
            for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES
        }
        assert not big, f"modules over {MAX_LINES} lines: {big}"

    @pytest.mark.parametrize("package", packages())
    def test_each_package_states_its_contract(self, package: str) -> None:
        init = ROOT.joinpath(*package.split("."), "__init__.py")
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring stating its contract"
