"""What a worker process holds for its lifetime, on one object: settings, the integration's App, the
event loop its handlers run on, the dead-letter store, the job signer and the lifecycle state
(shutdown grace timer, ledger sweeper stop flag).

Async handlers of every task in the process run on one loop in a daemon thread, so handlers that
wait on I/O overlap (with the threads pool) and no task pays for a new loop. The loop is uvloop's
where it is installed (it comes with `uvicorn[standard]`), as in the ingress: waking it from a
pool thread and running a task on it cost about half as much CPU as on asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from shared.app.loading import load_app
from shared.app.registry import Registry, disable_secret_check
from shared.errors import HandlerTimeout
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.signing import JobSigner
from shared.settings import Settings, get_settings
from workers.timeouts import Deadlines

logger = logging.getLogger("frameio_kit.worker")

T = TypeVar("T")


class WorkerRuntime:
    """One per worker process. Loop and store are rebuilt in a forked child (prefork pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: Registry | None = None
        self._signer: JobSigner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_pid: int | None = None
        self._deadlines: Deadlines | None = None  # handler time limits on that loop (workers/timeouts.py)
        self._store: tuple[int, DeadLetterStore] | None = None
        self.grace_timer: threading.Timer | None = None
        self.ledger_stop = threading.Event()
        self._per_process: dict[str, tuple[int, Any]] = {}
        # Not `_lock`: a builder may read `app`, which takes it; re-entrant: a builder may build another.
        self._per_process_lock = threading.RLock()

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def app(self) -> Registry:
        """The integration's App, imported once per process from FRAMEIO_APP."""
        with self._lock:
            if self._app is None:
                disable_secret_check()
                self._app = load_app(self.settings.frameio_app)
            return self._app

    def set_app(self, app: Registry) -> None:
        """Use an App object directly (in-process workers, tests)."""
        self._app = app

    @property
    def signer(self) -> JobSigner:
        """Verifies job envelopes; built at worker start so a missing key fails there."""
        with self._lock:
            if self._signer is None:
                self._signer = JobSigner.from_settings(self.settings)
            return self._signer

    @property
    def store(self) -> DeadLetterStore:
        """The process's store (one Redis connection pool per process, rebuilt after a fork)."""
        with self._lock:
            if self._store is None or self._store[0] != os.getpid():
                self._store = (os.getpid(), DeadLetterStore.from_settings(self.settings))
            return self._store[1]

    def per_process(self, name: str, build: Callable[[], T]) -> T:
        """An object of another module built once per process, rebuilt after a fork (it holds Redis
        connections): the event history, the breaker (workers/event_log.py, workers/breaker.py)."""
        found = self._per_process.get(name)  # without the lock: read on every task
        if found is not None and found[0] == os.getpid():
            return cast(T, found[1])
        with self._per_process_lock:
            found = self._per_process.get(name)
            if found is None or found[0] != os.getpid():
                found = self._per_process[name] = (os.getpid(), build())
            return cast(T, found[1])

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child inherits the parent's loop object but not its thread.
            if self._loop is None or self._loop_pid != os.getpid() or self._loop.is_closed():
                loop = _new_loop()
                thread = threading.Thread(target=loop.run_forever, name="frameio-kit-loop", daemon=True)
                thread.start()
                self._loop, self._loop_pid = loop, os.getpid()
                self._deadlines = Deadlines(loop)
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the process loop and wait for its result from the calling (pool) thread.

        A lock released by the task's done callback is the whole hand-off back: lighter than
        `run_coroutine_threadsafe`'s chained concurrent future (a condition and two callbacks).
        Past `timeout` seconds the task is cancelled and `HandlerTimeout` raised (workers/timeouts.py).
        """
        loop = self._get_loop()
        deadlines = self._deadlines if timeout is not None else None
        finished = threading.Lock()
        finished.acquire()
        outcome: list[asyncio.Task[T] | BaseException] = []

        def start() -> None:
            try:
                task = loop.create_task(coro)
            except BaseException as exc:  # the loop is closing: fail the caller instead of leaving it waiting
                coro.close()
                outcome.append(exc)
                finished.release()
                return
            outcome.append(task)
            if deadlines is None or timeout is None:
                task.add_done_callback(lambda _: finished.release())
                return
            deadlines.add(task, timeout)

            def done(_: object) -> None:
                deadlines.discard(task)
                finished.release()

            task.add_done_callback(done)

        loop.call_soon_threadsafe(start)
        finished.acquire()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        task = outcome[0]
        if deadlines is not None and timeout is not None and deadlines.timed_out(task):
            cause = None if task.cancelled() else task.exception()
            raise HandlerTimeout(timeout) from cause
        return task.result()

    def stop_loop(self) -> None:
        """Stop the loop at worker shutdown, after running tasks have finished."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._loop_pid == os.getpid() and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # no uvloop on this platform (Windows): asyncio's loop
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_runtime = WorkerRuntime()


def current() -> WorkerRuntime:
    """The process's runtime (Celery's signal handlers and tasks have no other way to reach it)."""
    return _runtime


def get_kit_app() -> Registry:
    """The integration's App (`current().app`)."""
    return _runtime.app


def set_kit_app(app: Registry) -> None:
    """Use an App object directly (in-process workers, tests)."""
    _runtime.set_app(app)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the process loop (`current().run`)."""
    return _runtime.run(coro)
