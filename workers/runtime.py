"""The worker process's runtime: the integration's App and one event loop for its lifetime.

Async handlers of every task in the process run on one loop in a daemon thread, so handlers that
wait on I/O overlap (with the threads pool) and no task pays for a new loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from shared.core.loading import load_app
from shared.core.registry import Registry, disable_secret_check
from shared.settings import get_settings

logger = logging.getLogger("frameio_kit.worker")

T = TypeVar("T")

_lock = threading.Lock()
_app: Registry | None = None
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def get_kit_app() -> Registry:
    """The integration's App, imported once per process from FRAMEIO_APP."""
    global _app
    with _lock:
        if _app is None:
            disable_secret_check()
            _app = load_app(get_settings().frameio_app)
        return _app


def set_kit_app(app: Registry) -> None:
    """Use an App object directly (in-process workers, tests)."""
    global _app
    _app = app


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # A forked child inherits the parent's loop object but not its thread.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="frameio-kit-loop", daemon=True)
            thread.start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the process loop and wait for its result from the calling (pool) thread."""
    return asyncio.run_coroutine_threadsafe(coro, _get_loop()).result()


def shutdown() -> None:
    """Stop the loop at worker shutdown, after running tasks have finished."""
    global _loop
    with _lock:
        loop, _loop = _loop, None
    if loop is not None and _loop_pid == os.getpid() and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
