"""Finding a user's package named like one of ours (`shared`, `ingress`, `workers`) before it breaks imports.

Python holds one module per name: next to ours, a user's `shared/` is either never imported ("No module
named 'shared.util'") or hides ours. Standard library only, so that it also runs before `shared` resolves.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

OUR_TOP_LEVEL = ("shared", "ingress", "workers")
"""The top-level names this distribution installs besides `frameio_kit` (pyproject.toml)."""

_OUR_ROOT = Path(__file__).resolve().parent.parent.parent


class Collision(NamedTuple):
    """A package or module named `name` at `found`, where ours lives at `ours`.

    A NamedTuple, not a dataclass: frameio_kit.import_guard runs this module without registering it.
    """

    name: str
    found: Path
    ours: Path


def find_collisions(
    search_path: Sequence[str] | None = None, modules: Mapping[str, ModuleType] | None = None
) -> list[Collision]:
    """Every entry of `search_path` (default `sys.path`) where one of our names resolves elsewhere than to
    our package, and any such name already imported from elsewhere (`modules`, default `sys.modules`).

    Every entry counts, not only the first match: once ours is imported, a user's package later on the
    path is the one whose submodules cannot be found.
    """
    entries = sys.path if search_path is None else search_path
    loaded = sys.modules if modules is None else modules
    found: dict[tuple[str, Path], Collision] = {}
    for name in OUR_TOP_LEVEL:
        ours = _OUR_ROOT / name
        module = loaded.get(name)
        spec = getattr(module, "__spec__", None) if module is not None else None
        candidates = [_location(spec)] if isinstance(spec, ModuleSpec) else []
        candidates += [_location(PathFinder.find_spec(name, [entry])) for entry in _usable(entries)]
        for location in candidates:
            if location is not None and not _same(location, ours):
                found.setdefault((name, location), Collision(name, location, ours))
    return list(found.values())


def collision_message(collisions: Iterable[Collision]) -> str:
    """One paragraph: which of the user's packages collide with which of ours, and what to do."""
    listed = list(collisions)
    clashes = "; ".join(
        f"your `{c.name}` at {c.found} has the name of frameio-kit's own package {c.ours}" for c in listed
    )
    example = listed[0].name if listed else "shared"
    return (
        f"package name collision: {clashes}. Python imports one package per name, so either your imports of it "
        f"or frameio-kit's fail (\"No module named '{example}.…'\"). Rename your package (e.g. `{example}` -> "
        f"`myapp_{example}`, and its imports) or move it inside your own package (`myapp/{example}/`, imported "
        f"as `myapp.{example}`)."
    )


def _usable(entries: Sequence[str]) -> list[str]:
    # `""` stands for the working directory; anything that is not a string (a bytes entry) cannot be searched.
    return [entry for entry in entries if isinstance(entry, str)]


def _location(spec: ModuleSpec | None) -> Path | None:
    """Where a spec's code lives: the package's folder (regular or namespace) or the module's file."""
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if folders:
        python_folders = [Path(f) for f in folders if _holds_python(Path(f))]
        return python_folders[0].resolve() if python_folders else None
    if spec.origin and spec.has_location:
        return Path(spec.origin).resolve()
    return None


def _holds_python(folder: Path) -> bool:
    """A namespace folder with no Python in it (say `workers/` of deployment files) imports nothing that
    could clash; a regular package always counts."""
    if (folder / "__init__.py").exists():
        return True
    return any(folder.glob("*.py")) or any(folder.glob("*/*.py"))


def _same(location: Path, ours: Path) -> bool:
    try:
        return location == ours.resolve() or location.samefile(ours)
    except OSError:
        return False
