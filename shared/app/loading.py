"""Find the integration's `App` from a `module:attribute` reference (FRAMEIO_APP)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.app.collisions import collision_message, find_collisions
from shared.app.registry import Registry
from shared.errors import AppLoadError
from shared.settings import get_settings


def load_app(reference: str | None) -> Registry:
    """Import `module:attribute` and return the integration it names, with a clear error otherwise."""
    if not reference:
        raise AppLoadError("no app given: pass APP (module:attribute) or set FRAMEIO_APP")
    module_part, _, attr = reference.partition(":")
    attr = attr or "app"
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name = _module_name(module_part)
    refuse_collisions()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {module_name!r} (from {reference!r}): {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AppLoadError(f"{module_name!r} has no attribute {attr!r}") from exc
    if not isinstance(obj, Registry):
        raise AppLoadError(f"{reference!r} is a {type(obj).__name__}, not a frameio_kit.App")
    obj.check_start_up(get_settings())  # what no ingress or worker process can serve (e.g. MemoryStorage)
    return obj


def _module_name(module_part: str) -> str:
    """`pkg.mod` as is; a file path (`examples/review_bot.py`, `./myapp.py`) as the module it names.

    A path inside the working directory becomes a dotted name (so packages import as usual);
    one elsewhere has its folder put on `sys.path`.
    """
    if "/" not in module_part and not module_part.endswith(".py"):
        return module_part
    path = Path(module_part).with_suffix("") if module_part.endswith(".py") else Path(module_part)
    resolved = path.resolve()
    try:
        return ".".join(resolved.relative_to(Path.cwd()).parts)
    except ValueError:
        sys.path.insert(0, str(resolved.parent))
        return resolved.name


def refuse_collisions(search_path: Sequence[str] | None = None) -> None:
    """Refuse to import the integration while one of its packages is named like ours (`shared`, ...).

    Checked against the `sys.path` the integration is imported with (or `search_path`, a child's), so
    after the working directory was added: otherwise the import fails later with a bare
    "No module named 'shared.util'".
    """
    collisions = find_collisions(search_path)
    if collisions:
        raise AppLoadError(collision_message(collisions))
