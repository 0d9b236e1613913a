"""Enqueue for brokers other than Redis (RabbitMQ): Celery's own producer, run off the event loop.

Redis still records de-duplication. A delivery first claims its key as "pending", then publishes
(with publisher confirms), then marks the key accepted; a failed publish releases the claim so
Frame.io's retry is accepted rather than mistaken for a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import anyio.to_thread
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import tracing
from shared.core.events import AnyEvent
from shared.errors import BrokerUnavailable
from shared.events.history import EventWriter, Queued, signed_envelope
from shared.jobs.publish import producer_app, send_task
from shared.jobs.signing import JobSigner
from shared.redis_keys import dedup_key
from shared.settings import Settings

logger = logging.getLogger(__name__)

_PENDING = b"pending"
# A claim outlives any publish attempt; if the process dies mid-publish it expires and the
# delivery is accepted again on Frame.io's next try.
_PENDING_TTL = 30


class CeleryProducer:
    """One per ingress process. Publishing runs in worker threads (Celery's producer blocks)."""

    def __init__(self, redis: Redis, settings: Settings, signer: JobSigner) -> None:
        self._redis = redis
        self._signer = signer
        self._queue = settings.queue
        self._dedup_window = settings.dedup_window
        self._timeout = settings.enqueue_timeout
        self._celery = producer_app(settings)
        self._history = EventWriter.from_settings(settings)

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
        """Publish to `queue` (the default queue when None) unless a delivery with `key` was accepted
        within the window: True when new. `order_key` is never set here: ordering needs a Redis broker,
        and the ingress refuses `ordered_by=` at start-up without one (shared/jobs/routing.py)."""
        # Read here: the publishing thread does not see this request's trace context.
        signed = self._signer.sign(task_name, kwargs)
        target = queue or self._queue
        publish = partial(send_task, self._celery, task_name, signed, kwargsrepr, target, tracing.carrier())
        record = (
            self._history.queued(task_name, kwargs, event, target, signed_envelope(task_name, signed))
            if self._history.enabled
            else None
        )
        try:
            async with asyncio.timeout(self._timeout):
                if self._dedup_window > 0 and not await self._claim(dedup_key(key)):
                    return False
                if record is not None:  # before publishing: a worker never sees a job whose record is to come
                    await self._record(record)
                try:
                    await anyio.to_thread.run_sync(publish, abandon_on_cancel=True)
                except BaseException:
                    await self._release(dedup_key(key))
                    raise
                if self._dedup_window > 0:
                    await self._retrying(lambda: self._redis.set(dedup_key(key), b"1", ex=self._dedup_window))
                return True
        except TimeoutError as exc:
            raise BrokerUnavailable("broker did not take the message in time") from exc
        except (RedisError, OSError) as exc:
            logger.warning("enqueue failed: %s", type(exc).__name__)
            raise BrokerUnavailable("broker did not take the message") from exc
        except Exception as exc:
            # kombu raises its own OperationalError family for an unreachable broker.
            logger.warning("publish failed: %s", type(exc).__name__)
            raise BrokerUnavailable("broker did not take the message") from exc

    async def _record(self, record: Queued) -> None:
        """The event history's record (shared/events/history.py); a failed write is logged, never a failed enqueue."""
        try:
            await self._history.write(self._redis, [record])
        except (RedisError, OSError) as exc:
            logger.warning("event history not written: %s", type(exc).__name__)

    async def _claim(self, key: str) -> bool:
        """True when this delivery owns `key`; False when one was already accepted. Waits while
        another request holds the claim (a concurrent duplicate)."""
        while True:
            if await self._retrying(lambda: self._redis.set(key, _PENDING, nx=True, ex=_PENDING_TTL)):
                return True
            value = await self._retrying(lambda: self._redis.get(key))
            if value is not None and value != _PENDING:
                return False
            await asyncio.sleep(0.05)

    async def _release(self, key: str) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self._redis.delete(key)
        except (RedisError, OSError):
            logger.warning("could not release the de-duplication claim; it expires in %ss", _PENDING_TTL)

    @staticmethod
    async def _retrying(call: Any) -> Any:
        delay = 0.05
        while True:
            try:
                return await call()
            except (RedisError, OSError) as exc:
                logger.warning("redis call failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._celery.close)
