"""The layout's rules, read from the source: one direction of imports, layers inside `shared/`, no import loops.

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


# Layers inside `shared/`, lowest first: a module imports its own group and the groups of lower
# layers only. The base is `shared.core` plus the modules directly in `shared/` (settings, errors,
# logs, tracing, redis_*, context, hmac_sign): one layer, as settings reads the signature tolerance
# (core/signature.py) and the API client reads settings and tracing; the loop test keeps it acyclic.
# Peers of one layer (jobs, oauth, actions) do not import each other; install builds on oauth's
# token store, and events (the history) on jobs' contract and oauth's cipher; the registry orchestrates
# sign-in and install, so it sits on top.
SHARED_LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"shared.core", "shared.ratelimit", "base"}),
    frozenset({"shared.jobs", "shared.oauth", "shared.actions"}),
    frozenset({"shared.install", "shared.events"}),
    frozenset({"shared.app"}),
)
_RANK = {group: rank for rank, groups in enumerate(SHARED_LAYERS) for group in groups}


def _group(module: str) -> str:
    """`shared.<package>` for a module in a sub-package of shared/, else "base" (shared/*.py)."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / "shared" / parts[1]).is_dir():
        return f"shared.{parts[1]}"
    return "base"


SHARED_MODULES = sorted(m for m in GRAPH if _top(m) == "shared")


def test_every_package_in_shared_has_a_layer() -> None:
    assert sorted({_group(m) for m in SHARED_MODULES} - set(_RANK)) == []


def _allowed(module: str, target: str) -> bool:
    """Lower layers, its own group, and anything in the base from the base (core and shared/*.py mix)."""
    source, dest = _RANK.get(_group(module), -1), _RANK.get(_group(target), -1)
    return dest < source or _group(target) == _group(module) or source == dest == 0


def test_no_layer_in_shared_imports_a_higher_one_or_a_peer() -> None:
    offenders = sorted(
        f"{module} -> {target}"
        for module in SHARED_MODULES
        for target in GRAPH[module]
        if _top(target) == "shared" and not _allowed(module, target)
    )
    assert offenders == []


def test_the_base_models_know_nothing_of_sign_in_installation_or_the_registry() -> None:
    above = ("shared.oauth", "shared.install", "shared.app")
    offenders = sorted(
        f"{module} -> {target}"
        for module in SHARED_MODULES
        if module.startswith("shared.core")
        for target in GRAPH[module]
        if target.startswith(above)
    )
    assert offenders == []


def test_the_graph_sees_the_packages() -> None:
    """Guards the tests above against passing on an empty graph."""
    assert "shared.app.registry" in GRAPH
    assert "shared.core.events" in GRAPH["shared.app.registry"]
    assert {"shared.oauth.token_manager", "shared.install.store"} <= GRAPH["shared.app.registry"]
    assert "ingress.app" in GRAPH["frameio_kit.app"]
    assert {_group(m) for m in SHARED_MODULES} == set(_RANK)
