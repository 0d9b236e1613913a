"""Handler time limits: each handler's limit (`timeout=`, else FRAMEIO_KIT_HANDLER_TIMEOUT), the check at
start-up that every limit is below the visibility timeout, and `Deadlines`, which cancels a handler's
task on the worker's loop once it runs past its limit.

A limit at or past FRAMEIO_KIT_VISIBILITY_TIMEOUT would let the broker hand a still-running job to a
second worker, so such a worker refuses to start. Left unset, FRAMEIO_KIT_HANDLER_TIMEOUT follows a
lower visibility timeout down (90 % of it), so lowering one never makes the worker refuse to start.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from shared.app.registry import HandlerSpec, Registry
from shared.errors import ConfigurationError
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.worker")

DEFAULT_SHARE_OF_VISIBILITY = 0.9


def default_timeout(settings: Settings) -> float:
    """FRAMEIO_KIT_HANDLER_TIMEOUT when set; else its default, or 90 % of the visibility timeout if lower."""
    if "handler_timeout" in settings.model_fields_set:
        return settings.handler_timeout
    return min(settings.handler_timeout, DEFAULT_SHARE_OF_VISIBILITY * settings.visibility_timeout)


def handler_timeout(spec: HandlerSpec, settings: Settings) -> float:
    """The seconds `spec`'s handler may run before it is cancelled."""
    return spec.timeout if spec.timeout is not None else default_timeout(settings)


def check_handler_timeouts(app: Registry, settings: Settings) -> None:
    """Refuse (ConfigurationError: exit 2 from the CLI) a limit not below the visibility timeout."""
    visibility = settings.visibility_timeout
    if "handler_timeout" in settings.model_fields_set and settings.handler_timeout >= visibility:
        raise ConfigurationError(
            f"FRAMEIO_KIT_HANDLER_TIMEOUT={settings.handler_timeout:g} is not below "
            f"FRAMEIO_KIT_VISIBILITY_TIMEOUT={visibility}: a handler still running when the visibility timeout "
            "passes is run a second time, in parallel; lower the one or raise the other"
        )
    specs = [*app.webhook_handlers.values(), *app.action_job_handlers.values()]
    for spec in specs:
        if spec.timeout is not None and spec.timeout >= visibility:
            where = "on_webhook" if spec.kind == "webhook" else "on_action_job"
            name = f"{getattr(spec.func, '__module__', '?')}.{getattr(spec.func, '__qualname__', '?')}"
            raise ConfigurationError(
                f"{where}({spec.event_type!r}) handler {name} has timeout={spec.timeout:g}, not below "
                f"FRAMEIO_KIT_VISIBILITY_TIMEOUT={visibility}: a handler still running when the visibility timeout "
                "passes is run a second time, in parallel; lower its timeout or raise the visibility timeout"
            )


class Deadlines:
    """The running handlers' deadlines on one loop, watched by one timer: adding and removing a task is
    a dict operation, and the timer fires only at the earliest deadline (usually minutes away), not once
    per task. Touched only from the loop's thread; `expired` is read by the waiting pool thread after
    the task is done."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[asyncio.Task[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.expired: set[asyncio.Task[Any]] = set()

    def add(self, task: asyncio.Task[Any], seconds: float) -> None:
        deadline = self._loop.time() + seconds
        self._due[task] = deadline
        if deadline < self._timer_at:
            self._arm(deadline)

    def discard(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)

    def timed_out(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled for its deadline (forgotten once asked)."""
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        for task, deadline in list(self._due.items()):
            if deadline <= now + 0.001:  # timers may fire a hair early
                del self._due[task]
                if not task.done():
                    self.expired.add(task)
                    task.cancel()
        if self._due:
            self._arm(min(self._due.values()))
