"""`redis_lock`: one holder at a time across processes, for the token refresh and install operations.

redis-py's `Lock` is the mechanism (SET NX PX with a random token, release by a compare-and-delete
script, so a holder whose lock expired cannot free the next holder's); this module fixes how the
product uses it: a bounded wait, `LockUnavailable` when busy, and an expired lock logged, not raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import LockError

from shared.errors import LockUnavailable

logger = logging.getLogger(__name__)

_POLL = 0.05
"""Seconds between attempts while waiting for a busy lock."""


@asynccontextmanager
async def redis_lock(redis: Redis, key: str, *, timeout: float, wait: float, busy: str) -> AsyncIterator[None]:
    """Hold `key` for at most `timeout` seconds; wait up to `wait` for it, else raise `LockUnavailable(busy)`.

    The body's work must end well inside `timeout`: past it another process may take the lock.
    """
    lock = redis.lock(key, timeout=timeout, blocking_timeout=wait, sleep=_POLL)
    if not await lock.acquire():
        raise LockUnavailable(busy)
    try:
        yield
    finally:
        try:
            await lock.release()
        except LockError:
            logger.warning("lock %s expired before release", key)
