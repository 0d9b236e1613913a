"""Celery's worker state, in one place: the requests a worker process holds (running, prefetched, and
waiting for a countdown retry's ETA), which graceful shutdown (workers/shutdown.py) hands back to the queue.

`check()` runs at worker start (workers/signals.py): on a Celery without `scheduled_requests` (before 5.7)
countdown retries held in the worker would not be requeued at shutdown, so the worker refuses to start.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from celery.worker import state
from celery.worker.request import Request

from shared.errors import ConfigurationError

SUPPORTED = "celery>=5.7,<5.8"
"""As pyproject.toml bounds it; tests/test_dependency_adapters.py keeps the two equal."""

_REQUEST_SETS = ("active_requests", "reserved_requests", "scheduled_requests")
# What shutdown reads on each request: whether it is settled, its broker message (to reject), its id (to log).
_REQUEST_ATTRIBUTES = ("acknowledged", "message", "id")


def check() -> None:
    """Raise `ConfigurationError` naming the supported Celery versions if the worker state lacks what we use."""
    missing = [f"celery.worker.state.{name}" for name in _REQUEST_SETS if not hasattr(state, name)]
    missing += [f"celery.worker.request.Request.{name}" for name in _REQUEST_ATTRIBUTES if not hasattr(Request, name)]
    if missing:
        try:
            installed = f"celery {version('celery')}"
        except PackageNotFoundError:
            installed = "this celery"
        raise ConfigurationError(
            f"{installed} is not supported: graceful shutdown (workers/shutdown.py) needs {', '.join(missing)}; "
            f"install {SUPPORTED} (pyproject.toml)"
        )


def running_count() -> int:
    """Requests the pool is executing now."""
    return len(state.active_requests)


def held_requests() -> set[Any]:
    """Every request this worker process holds and has not finished: running, prefetched, or waiting
    for its ETA (countdown retries)."""
    return {*state.active_requests, *state.reserved_requests, *state.scheduled_requests}
