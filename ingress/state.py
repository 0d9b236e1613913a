"""What one ingress process holds for its lifetime: the App, settings, Redis, the producer and the job signer."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from ingress.producers import Producer, build_producer
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
        self.producer: Producer = build_producer(settings, self.redis, self.signer)
        self.fallback_secrets = [
            s.get_secret_value() for s in (settings.webhook_secret, settings.custom_action_secret) if s is not None
        ]

    async def redis_ready(self) -> bool:
        try:
            async with asyncio.timeout(1.0):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self.producer.close()
        await self.redis.aclose()
