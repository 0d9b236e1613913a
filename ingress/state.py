"""What one ingress process holds for its lifetime: the App, settings, Redis, the producer and the job signer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from ingress.celery_producer import CeleryProducer
from ingress.producer import RedisProducer, build_task_message
from shared.core.registry import Registry
from shared.jobs.signing import JobSigner
from shared.redis_client import async_client
from shared.settings import Settings

logger = logging.getLogger(__name__)


class IngressState:
    """Shared by every request of one process; built in the lifespan, closed at shutdown."""

    def __init__(self, app: Registry, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.signer = JobSigner.from_settings(settings)
        self.redis = async_client(settings.redis_url, "ingress")
        self.producer = RedisProducer(
            self.redis,
            settings.queue,
            dedup_window=settings.dedup_window,
            timeout=settings.enqueue_timeout,
            stale_after=settings.ledger_stale_after,
        )
        # The Redis fast path writes kombu's Redis messages itself; any other broker goes through Celery.
        self.celery_producer = None if settings.broker_is_redis else CeleryProducer(self.redis, settings)
        self.fallback_secrets = [
            s.get_secret_value() for s in (settings.webhook_secret, settings.custom_action_secret) if s is not None
        ]

    async def enqueue(self, task_name: str, kwargs: dict[str, Any], kwargsrepr: str, key: str) -> bool:
        """Durably queue one task, signed; True when new, False for a duplicate delivery."""
        if self.celery_producer is not None:
            return await self.celery_producer.enqueue(task_name, self.signer.sign(task_name, kwargs), kwargsrepr, key)
        message = build_task_message(task_name, kwargs, kwargsrepr, self.settings.queue, self.signer)
        return await self.producer.enqueue(message, key)

    async def redis_ready(self) -> bool:
        try:
            async with asyncio.timeout(1.0):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self.producer.close()
        if self.celery_producer is not None:
            await self.celery_producer.close()
        await self.redis.aclose()
