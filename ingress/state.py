"""What one ingress process holds for its lifetime: the App, settings, Redis, the producer and the job signer."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from ingress.install.session import SessionStore
from ingress.producers import Producer, build_producer
from shared.actions.state import ActionState
from shared.app.registry import Registry
from shared.jobs.routing import Router, app_queues, check_ordering
from shared.jobs.signing import JobSigner
from shared.redis_client import async_client
from shared.settings import Settings

logger = logging.getLogger(__name__)


class IngressState:
    """Shared by every request of one process; built in the lifespan, closed at shutdown."""

    def __init__(self, app: Registry, settings: Settings) -> None:
        check_ordering(settings, [s.event_type for s in app.webhook_handlers.values() if s.ordered_by is not None])
        self.app = app
        self.settings = settings
        self.signer = JobSigner.from_settings(settings)
        self.redis = async_client(settings.redis_url, "ingress")
        # Queue traffic (the queue, de-duplication keys, the in-flight ledger) goes to the broker's Redis.
        same = settings.queue_redis_url == settings.redis_url
        self.queue_redis = self.redis if same else async_client(settings.queue_redis_url, "ingress")
        self.producer: Producer = build_producer(settings, self.queue_redis, self.signer)
        # Where each job goes (queue, account shard, ordering key): docs/tenants.md.
        self.router = Router(settings)
        handlers = [*app.webhook_handlers.values(), *app.action_job_handlers.values()]
        self.queues = app_queues(settings.queue, (s.queue for s in handlers))
        self.fallback_secrets = [
            s.get_secret_value() for s in (settings.webhook_secret, settings.custom_action_secret) if s is not None
        ]
        # Built on first use (ingress/actions.py, ingress/install/routes.py): they live as long as this state.
        self.action_state: ActionState | None = None
        self.install_sessions: SessionStore | None = None

    async def redis_ready(self) -> bool:
        """Both Redis roles answer: state (REDIS_URL) and, when it is another one, the broker's."""
        clients = (self.redis,) if self.queue_redis is self.redis else (self.redis, self.queue_redis)
        try:
            async with asyncio.timeout(1.0):
                return all(await asyncio.gather(*(c.ping() for c in clients)))
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self.producer.close()
        if self.queue_redis is not self.redis:
            await self.queue_redis.aclose()
        await self.redis.aclose()
