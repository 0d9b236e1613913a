"""Worker bookkeeping in Redis (completion markers, attempts, dead letters, the event history, paused
handlers) must not lose the message when Redis blips: retried for a while, then the message goes back
to the broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from celery.exceptions import Reject

logger = logging.getLogger("frameio_kit.worker")

T = TypeVar("T")

_STATE_DEADLINE = 30.0


def with_redis(what: str, call: Callable[[], T]) -> T:
    """Bookkeeping must not lose the message when Redis blips: retry for a while, then hand the
    message back to the broker (requeue) rather than acknowledge it."""
    deadline = time.monotonic() + _STATE_DEADLINE
    delay = 0.1
    while True:
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            if time.monotonic() > deadline:
                logger.error("redis unavailable for %s: requeueing the message", what)
                raise Reject(exc, requeue=True) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
