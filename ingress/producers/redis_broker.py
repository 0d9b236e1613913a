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

from shared.core.events import AnyEvent
from shared.errors import BrokerUnavailable
from shared.events.history import RECORD_LUA, EventWriter, Queued
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.signing import JobSigner
from shared.redis_direct import AsyncScriptCaller
from shared.redis_keys import dedup_key, ledger_due_key, ledger_key, order_state_key

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
    queue: str
    order: str  # the ordering state hash's name, "" when not ordered
    record: Queued | None = None  # the event history's record of it (shared/events/history.py)


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
        order_ttl: int = 86400,
        history: EventWriter | None = None,
    ) -> None:
        self._redis = redis
        self._queue = queue
        self._signer = signer
        self._dedup_window = dedup_window
        self._timeout = timeout
        self._stale_after = stale_after
        self._order_ttl = order_ttl
        self._script = redis.register_script(_ENQUEUE_LUA)
        self._pending: list[_Entry] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._caller = AsyncScriptCaller(redis)
        # The event history's record of each job rides the same round trip, just before the enqueue script.
        self._history = history if history is not None and history.enabled else None
        self._record = redis.register_script(RECORD_LUA)

    async def enqueue(
        self,
        task_name: str,
        kwargs: dict[str, Any],
        kwargsrepr: str,
        key: str,
        *,
        queue: str | None = None,
        order_key: str | None = None,
        event: AnyEvent | None = None,
    ) -> bool:
        """Queue one task as a signed Celery message (the `Producer` interface) on `queue` (the default
        queue when None), sequenced under `order_key` when given: True when new. `event` (the verified
        event) gives the history record its ids."""
        queue = queue or self._queue
        message = build_task_message(task_name, kwargs, kwargsrepr, queue, self._signer)
        record = self._history.queued(task_name, kwargs, event, queue, message) if self._history else None
        return await self.push(message, key, queue=queue, order_key=order_key, record=record)

    async def push(
        self,
        message: bytes,
        key: str,
        *,
        queue: str | None = None,
        order_key: str | None = None,
        record: Queued | None = None,
    ) -> bool:
        """Push `message` onto `queue` unless a delivery with `key` was accepted within the dedup window;
        a new message of an ordered handler gets its key's next sequence number in the same call.

        Returns True when pushed, False for a duplicate. Transient Redis errors are retried until
        the time budget runs out, then BrokerUnavailable.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        delay = 0.05
        queue = queue or self._queue
        order = order_state_key(order_key) if order_key else ""
        while True:
            fut: asyncio.Future[bool] = loop.create_future()
            self._pending.append(_Entry(key, message, fut, queue, order, record))
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
        keys: list[Any] = [ledger_key(), ledger_due_key()]
        args: list[Any] = [self._dedup_window, time.time() + self._stale_after, self._order_ttl]
        for e in batch:
            keys += (e.queue, dedup_key(e.key), e.order)
            args += (e.message, e.key)
        try:
            results = await self._call(keys, args, [e.record for e in batch if e.record is not None])
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

    async def _call(self, keys: list[str], args: list[Any], records: list[Queued]) -> Any:
        """The enqueue script, after the history's record script in the same round trip when there are
        records. A failed history write is logged, never a failed enqueue."""
        if not records or self._history is None:
            return await self._caller.call(self._script, keys, args)
        record_keys, record_args = self._history.script_call(records)
        recorded, results = await self._caller.call_many(
            [(self._record, record_keys, record_args), (self._script, keys, args)]
        )
        if isinstance(results, Exception):
            raise results
        if isinstance(recorded, Exception):
            logger.warning("event history not written for %d job(s): %s", len(records), type(recorded).__name__)
        return results

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        await self._caller.close()
