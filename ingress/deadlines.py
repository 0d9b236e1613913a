"""Many deadlines on one timer: the per-request time limits of the ingress's hot path.

A timer per request (`call_later` and `cancel`, or an `asyncio.timeout()` scope) cost more than
the work it guards, and nearly every request finishes long before its deadline. `Deadlines` keeps
one timer per process, armed for the earliest deadline; when it fires, every overdue key is
expired and the timer is re-armed for the next one, so nothing is expired late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Keys watched until `release`; `expire(key)` runs once for a key still watched at its deadline."""

    def __init__(self, expire: Callable[[K], object]) -> None:
        self._expire = expire
        self._due: dict[K, float] = {}
        self._expired: set[K] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, key: K, deadline: float) -> None:
        """Watch `key` until `deadline` (the running loop's clock)."""
        self._due[key] = deadline
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    def release(self, key: K) -> bool:
        """Stop watching `key`; True if it expired."""
        self._due.pop(key, None)
        if key in self._expired:
            self._expired.discard(key)
            return True
        return False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        next_deadline: float | None = None
        for key, deadline in list(self._due.items()):
            if deadline <= now:
                del self._due[key]
                self._expired.add(key)
                self._expire(key)
            elif next_deadline is None or deadline < next_deadline:
                next_deadline = deadline
        if next_deadline is not None:
            self._timer = loop.call_at(next_deadline, self._fire)
