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
from shared.errors import BrokerUnavailable
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

    async def enqueue(self, task_name: str, kwargs: dict[str, Any], kwargsrepr: str, key: str) -> bool:
        """Publish unless a delivery with `key` was accepted within the window: True when new."""
        # Read here: the publishing thread does not see this request's trace context.
        signed = self._signer.sign(task_name, kwargs)
        publish = partial(send_task, self._celery, task_name, signed, kwargsrepr, self._queue, tracing.carrier())
        try:
            async with asyncio.timeout(self._timeout):
                if self._dedup_window > 0 and not await self._claim(dedup_key(key)):
                    return False
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
