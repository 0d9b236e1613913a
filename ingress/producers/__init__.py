"""The one interface the ingress queues jobs through, and which implementation a broker gets:
`redis_broker` writes kombu's messages into a Redis broker itself; `celery_broker` publishes through
Celery's own producer for any other broker (RabbitMQ)."""

from __future__ import annotations

from typing import Any, Protocol

from redis.asyncio import Redis

from ingress.producers.celery_broker import CeleryProducer
from ingress.producers.redis_broker import RedisProducer
from shared.core.events import AnyEvent
from shared.events.history import EventWriter
from shared.jobs import ordering
from shared.jobs.signing import JobSigner
from shared.settings import Settings


class Producer(Protocol):
    """Durably queues one signed task: True when new, False for a duplicate delivery (same `key`
    within the de-duplication window); `BrokerUnavailable` when the broker did not take it in time.
    `queue` is the broker queue (shared/jobs/routing.py; None: FRAMEIO_KIT_QUEUE); `order_key` the
    hashed ordering key of an `ordered_by=` handler's job (Redis brokers only); `event` the verified
    event, whose ids the event history records (shared/events/history.py)."""

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
    ) -> bool: ...

    async def close(self) -> None: ...


def build_producer(settings: Settings, redis: Redis, signer: JobSigner) -> Producer:
    """Redis brokers get the group-committing fast path that writes kombu's messages itself; any
    other broker (RabbitMQ) goes through Celery's own producer, off the event loop. `redis` is the
    Redis of queue traffic (`Settings.queue_redis_url`): the broker itself, or REDIS_URL beside
    another broker, where the de-duplication keys live."""
    if settings.broker_is_redis:
        return RedisProducer(
            redis,
            settings.queue,
            dedup_window=settings.dedup_window,
            timeout=settings.enqueue_timeout,
            stale_after=settings.ledger_stale_after,
            signer=signer,
            order_ttl=ordering.state_ttl(settings),
            history=EventWriter.from_settings(settings),
        )
    return CeleryProducer(redis, settings, signer)
