"""Refuses, as `frameio_kit` is first imported, to run on top of a user's package named like ours (`shared`, ...).

Runs before `shared` is imported: with the user's folder first on `sys.path` (`uvicorn myapp:app`,
`python -m ...`), their `shared/` would stand in for ours and fail with a bare ModuleNotFoundError.
"""

from __future__ import annotations

import sys
from importlib.util import module_from_spec, spec_from_file_location
from itertools import pairwise
from pathlib import Path

# Loaded from our own tree by file: importing `shared.app.collisions` would go through `shared`,
# which may be the user's package.
_COLLISIONS = Path(__file__).resolve().parent.parent / "shared" / "app" / "collisions.py"


def refuse_package_collisions() -> None:
    """Raise ImportError naming the user's package and ours, and what to do, if one collides."""
    spec = spec_from_file_location("frameio_kit._collisions", _COLLISIONS)
    if spec is None or spec.loader is None:
        return  # not laid out as installed (a zipped or vendored copy): the CLI's check still runs
    collisions = module_from_spec(spec)
    spec.loader.exec_module(collisions)
    found = collisions.find_collisions()
    if not found:
        return
    message = f"frameio-kit: {collisions.collision_message(found)}"
    if _running_the_cli_as_module():
        print(message, file=sys.stderr)
        raise SystemExit(2)  # the CLI's exit status for a configuration error, without a traceback
    raise ImportError(message)


def _running_the_cli_as_module() -> bool:
    """`python -m frameio_kit.cli` (frameio_kit.testing.cli_command): runpy imports this package before
    the CLI's own error handling exists."""
    argv = sys.orig_argv
    return any(a == "-m" and b == "frameio_kit.cli" for a, b in pairwise(argv))


refuse_package_collisions()
