"""Durable, non-blocking enqueue of Celery messages from asyncio, for a Redis broker.

Celery's own producer is synchronous and would block the event loop, so the ingress writes
standard Celery protocol-2 messages (shared/jobs/kombu_redis.py) to the Redis list kombu consumes.
Concurrent requests are group-committed: one Lua call per batch records each delivery's
de-duplication key, pushes the new messages and enters them in the in-flight ledger, and each
request is answered only after the call carrying it has returned. The client given is the
broker's Redis (`Settings.queue_redis_url`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import BrokerUnavailable
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.signing import JobSigner
from shared.redis_direct import AsyncScriptCaller
from shared.redis_keys import dedup_key, ledger_due_key, ledger_key

logger = logging.getLogger(__name__)

_MAX_BATCH = 256

# The enqueue script: dedup keys, queue push and ledger entry, atomic per batch.
_ENQUEUE_LUA = resources.files("ingress.producers").joinpath("enqueue.lua").read_text(encoding="utf-8")


class _Expired(Exception):
    """The request's time budget ran out while its message waited for a batch."""


class _Entry(NamedTuple):
    key: str
    message: bytes
    fut: asyncio.Future[bool]


def _expire(fut: asyncio.Future[bool]) -> None:
    # A message still pending is pushed later anyway; its dedup key then absorbs Frame.io's retry.
    if not fut.done():
        fut.set_exception(_Expired())


class RedisProducer:
    """Group-committing producer for a Redis broker. One per process, shared by all requests."""

    def __init__(
        self,
        redis: Redis,
        queue: str,
        *,
        dedup_window: int,
        timeout: float,
        stale_after: float = 1800.0,
        signer: JobSigner | None = None,
    ) -> None:
        self._redis = redis
        self._queue = queue
        self._signer = signer
        self._dedup_window = dedup_window
        self._timeout = timeout
        self._stale_after = stale_after
        self._script = redis.register_script(_ENQUEUE_LUA)
        self._pending: list[_Entry] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._caller = AsyncScriptCaller(redis)

    async def enqueue(self, task_name: str, kwargs: dict[str, Any], kwargsrepr: str, key: str) -> bool:
        """Queue one task as a signed Celery message (the `Producer` interface): True when new."""
        return await self.push(build_task_message(task_name, kwargs, kwargsrepr, self._queue, self._signer), key)

    async def push(self, message: bytes, key: str) -> bool:
        """Push `message` unless a delivery with `key` was accepted within the dedup window.

        Returns True when pushed, False for a duplicate. Transient Redis errors are retried until
        the time budget runs out, then BrokerUnavailable.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        delay = 0.05
        while True:
            fut: asyncio.Future[bool] = loop.create_future()
            self._pending.append(_Entry(key, message, fut))
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_forever())
            self._wake.set()
            timer = loop.call_at(deadline, _expire, fut)
            try:
                return await fut
            except _Expired as exc:
                raise BrokerUnavailable("broker did not take the message in time") from exc
            except (RedisError, OSError) as exc:
                if loop.time() + delay >= deadline:
                    raise BrokerUnavailable("broker did not take the message in time") from exc
                logger.warning("enqueue failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            finally:
                timer.cancel()

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                await self._flush(batch)

    async def _flush(self, batch: list[_Entry]) -> None:
        keys = [self._queue, ledger_key(), ledger_due_key(), *(dedup_key(e.key) for e in batch)]
        args: list[Any] = [
            self._dedup_window,
            time.time() + self._stale_after,
            *(e.message for e in batch),
            *(e.key for e in batch),
        ]
        try:
            results = await self._caller.call(self._script, keys, args)
        except BaseException as exc:
            for entry in batch:
                if not entry.fut.done():
                    entry.fut.set_exception(exc if isinstance(exc, Exception) else RedisError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for entry, fresh in zip(batch, results, strict=True):
            if not entry.fut.done():
                entry.fut.set_result(bool(fresh))

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        await self._caller.close()
