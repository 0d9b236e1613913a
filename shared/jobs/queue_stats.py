"""Queue gauges read from Redis at scrape time: age of the oldest waiting message, depth, messages in
flight and dead letters. A constant number of Redis calls per scrape (one pipeline per server).

Reads kombu's Redis layout (shared/jobs/kombu_redis.py): the queue is a list the ingress LPUSHes
and workers BRPOP, so the oldest waiting message is at the tail; delivered, unacknowledged messages
sit in kombu's `unacked` hash until their task finishes (`task_acks_late`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio
from prometheus_client.core import GaugeMetricFamily

from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.jobs.kombu_redis import UNACKED_KEY
from shared.redis_keys import dead_letter_index_key


@dataclass(frozen=True)
class QueueStats:
    """One reading. None: not known (no Redis broker, or a tail message with no enqueue time)."""

    depth: int | None
    oldest_age: float | None
    in_flight: int | None
    dead_letters: int


def oldest_age(tail: bytes | None, now: float) -> float | None:
    """Seconds the message at the queue's tail has waited; 0 for an empty queue."""
    if tail is None:
        return 0.0
    try:
        headers = orjson.loads(tail).get("headers") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None
    enqueued_at = headers.get(ENQUEUED_AT_HEADER) if isinstance(headers, dict) else None
    if not isinstance(enqueued_at, int | float):
        return None  # published by a client that does not stamp it (a stock Celery producer)
    return max(0.0, now - float(enqueued_at))


def _broker_calls(pipe: Any, queue: str) -> None:
    pipe.llen(queue)
    pipe.lindex(queue, -1)
    pipe.hlen(UNACKED_KEY)


def _stats(broker: list[Any] | None, dead_letters: Any) -> QueueStats:
    if broker is None:
        return QueueStats(None, None, None, int(dead_letters))
    depth, tail, unacked = broker
    return QueueStats(int(depth), oldest_age(tail, time.time()), int(unacked), int(dead_letters))


def read(broker: redis.Redis | None, store: redis.Redis, queue: str) -> QueueStats:
    """Read the gauges (`broker` None for a non-Redis broker). Raises Redis errors."""
    if broker is None:
        return _stats(None, store.zcard(dead_letter_index_key()))
    pipe = broker.pipeline(transaction=False)
    _broker_calls(pipe, queue)
    if store is broker:
        pipe.zcard(dead_letter_index_key())
        *found, dead = pipe.execute()
        return _stats(found, dead)
    found = pipe.execute()
    return _stats(found, store.zcard(dead_letter_index_key()))


async def aread(broker: redis.asyncio.Redis | None, store: redis.asyncio.Redis, queue: str) -> QueueStats:
    """`read` for asyncio clients."""
    if broker is None:
        return _stats(None, await store.zcard(dead_letter_index_key()))
    pipe = broker.pipeline(transaction=False)
    _broker_calls(pipe, queue)
    if store is broker:
        pipe.zcard(dead_letter_index_key())
        *found, dead = await pipe.execute()
        return _stats(found, dead)
    found = await pipe.execute()
    return _stats(found, await store.zcard(dead_letter_index_key()))


def families(stats: QueueStats, queue: str) -> Iterable[GaugeMetricFamily]:
    """The Prometheus gauges of one reading; unknown values are left out rather than guessed."""
    if stats.oldest_age is not None:
        age = GaugeMetricFamily(
            "frameio_kit_queue_oldest_age_seconds",
            "Seconds the oldest message waiting in the queue has waited (0 when empty): what to autoscale on.",
            labels=["queue"],
        )
        age.add_metric([queue], stats.oldest_age)
        yield age
    if stats.depth is not None:
        depth = GaugeMetricFamily("frameio_kit_queue_depth", "Messages waiting in the queue.", labels=["queue"])
        depth.add_metric([queue], float(stats.depth))
        yield depth
    if stats.in_flight is not None:
        in_flight = GaugeMetricFamily(
            "frameio_kit_queue_in_flight",
            "Messages delivered to workers and not yet acknowledged (running, or waiting out a retry delay).",
            labels=["queue"],
        )
        in_flight.add_metric([queue], float(stats.in_flight))
        yield in_flight
    dead = GaugeMetricFamily("frameio_kit_dead_letters", "Events in the dead-letter store.")
    dead.add_metric([], float(stats.dead_letters))
    yield dead


class Reading:
    """A collector holding one reading, for a registry rendered once (a scrape answered from asyncio)."""

    def __init__(self, stats: QueueStats, queue: str) -> None:
        self._stats = stats
        self._queue = queue

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return families(self._stats, self._queue)
