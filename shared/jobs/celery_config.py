"""The Celery configuration every process that talks to the broker shares: the workers, the ingress's
publisher for non-Redis brokers, and the CLI's dead-letter replay. They must agree on the broker, the
queue, the serializer and the transport options, or messages go where nobody consumes them."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from shared.jobs.routing import physical_queues
from shared.settings import Settings


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Transport options: for Redis, crash redelivery after `visibility_timeout` seconds; for
    RabbitMQ, publisher confirms (so "sent" means the broker has it).

    kombu restores a dead worker's unacknowledged messages only once they are older than the
    visibility timeout, and by default scans for them every 10 x 10 s; scanning every few
    seconds keeps the delay close to the documented value.
    """
    if not settings.broker_is_redis:
        return {"confirm_publish": True}
    interval = max(1, min(10, settings.visibility_timeout // 4))
    return {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": interval,
        "unacked_restore_throttle": 1,
        # The restore scan runs under a Redis mutex; a worker killed while holding it would stall
        # every other worker's restores until it expires (kombu's default: 300 s).
        "unacked_mutex_expire": max(5, min(300, settings.visibility_timeout // 2)),
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        # Nothing here publishes with a priority, so one list per queue: kombu's default steps
        # (0, 3, 6, 9) would make each worker BRPOP four lists per queue, 68 with a queue's 16 shards.
        "priority_steps": [0],
    }


def declared_queue(name: str) -> Queue:
    """A queue as Celery creates a missing one: its own direct exchange, routing key = name."""
    return Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]


def celery_app(name: str, settings: Settings, *, set_as_current: bool, **overrides: Any) -> Celery:
    """A Celery app on the configured broker with the shared configuration, plus `overrides` (the
    worker's own settings: acks, prefetch, events...)."""
    app = Celery(name, broker=settings.celery_broker_url, set_as_current=set_as_current)
    app.conf.update(
        task_default_queue=settings.queue,
        # The default queue and its account shards (docs/tenants.md), so that every process declares
        # and `celery -A workers purge` / Flower know them; handlers' own queues are added by the worker.
        task_queues=[declared_queue(q) for q in physical_queues(settings.queue)],
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options=broker_transport_options(settings),
        enable_utc=True,
        **overrides,
    )
    return app
