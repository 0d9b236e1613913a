"""The layout's rules, read from the source: one direction of imports and no import loops.

Every import counts, at module level or inside a function, under TYPE_CHECKING or not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "ingress", "workers", "frameio_kit")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports (a `from pkg import mod` counts as importing pkg.mod)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


GRAPH = _graph()


def _top(module: str) -> str:
    return module.partition(".")[0]


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [("shared", {"ingress", "workers", "frameio_kit"}), ("ingress", {"workers"}), ("workers", {"ingress"})],
)
def test_imports_go_one_way(importer: str, forbidden: set[str]) -> None:
    offenders = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _top(module) == importer
        for target in targets
        if _top(target) in forbidden
    )
    assert offenders == []


def test_the_import_graph_has_no_cycle() -> None:
    """Tarjan's strongly connected components: any component of more than one module is a loop.

    A package's `__init__` importing its own submodules is not a loop (Python finishes the
    package first), so edges from a package to its own submodules are left out.
    """
    edges = {
        m: {t for t in targets if not (t.startswith(m + ".") and GRAPH.get(t) is not None)}
        for m, targets in GRAPH.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert loops == []


def test_the_graph_sees_the_packages() -> None:
    """Guards the two tests above against passing on an empty graph."""
    assert "shared.core.registry" in GRAPH
    assert "shared.core.events" in GRAPH["shared.core.registry"]
    assert "ingress.app" in GRAPH["frameio_kit.app"]
