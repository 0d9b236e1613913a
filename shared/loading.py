"""Find the integration's `App` from a `module:attribute` reference (FRAMEIO_APP)."""

from __future__ import annotations

import importlib
import os
import sys

from shared.errors import AppLoadError
from shared.registry import App


def load_app(reference: str | None) -> App:
    """Import `module:attribute` and return the App it names, with a clear error otherwise."""
    if not reference:
        raise AppLoadError("no app given: pass APP (module:attribute) or set FRAMEIO_APP")
    module_name, _, attr = reference.partition(":")
    attr = attr or "app"
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
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
    if not isinstance(obj, App):
        raise AppLoadError(f"{reference!r} is a {type(obj).__name__}, not a frameio_kit.App")
    return obj
