"""Queue gauges read from Redis at scrape time: age of the oldest waiting message, depth, messages in
flight and dead letters. A constant number of Redis calls per scrape (one pipeline per server).

Reads kombu's Redis layout (shared/jobs/kombu_redis.py): the queue is a list the ingress LPUSHes
and workers BRPOP, so the oldest waiting message is at the tail; delivered, unacknowledged messages
sit in kombu's `unacked` hash until their task finishes (`task_acks_late`). A queue's gauges cover
its account shards (shared/jobs/routing.py): depth summed, the oldest message of any of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio
from prometheus_client.core import GaugeMetricFamily

from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.jobs.kombu_redis import UNACKED_KEY
from shared.jobs.routing import physical_queues
from shared.redis_keys import dead_letter_index_key


@dataclass(frozen=True)
class QueueStats:
    """One reading. None: not known (no Redis broker, or a tail message with no enqueue time).
    `depth` and `oldest_age` cover every queue read; `queues` has them per queue."""

    depth: int | None
    oldest_age: float | None
    in_flight: int | None
    dead_letters: int
    queues: dict[str, tuple[int, float | None]] = field(default_factory=dict)


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


def _names(queue: str | Sequence[str]) -> list[str]:
    return [queue] if isinstance(queue, str) else list(queue)


def _broker_calls(pipe: Any, queues: list[str]) -> None:
    for queue in queues:
        for name in physical_queues(queue):
            pipe.llen(name)
            pipe.lindex(name, -1)
    pipe.hlen(UNACKED_KEY)


def _oldest(ages: list[float | None]) -> float | None:
    return None if any(a is None for a in ages) else max((a for a in ages if a is not None), default=0.0)


def _stats(queues: list[str], broker: list[Any] | None, dead_letters: Any) -> QueueStats:
    if broker is None:
        return QueueStats(None, None, None, int(dead_letters))
    now = time.time()
    per_queue: dict[str, tuple[int, float | None]] = {}
    position = 0
    for queue in queues:
        depth, ages = 0, []
        for _ in physical_queues(queue):
            length, tail = broker[position], broker[position + 1]
            position += 2
            depth += int(length)
            ages.append(oldest_age(tail, now))
        per_queue[queue] = (depth, _oldest(ages))
    total = sum(d for d, _ in per_queue.values())
    oldest = _oldest([a for _, a in per_queue.values()])
    return QueueStats(total, oldest, int(broker[position]), int(dead_letters), per_queue)


def read(broker: redis.Redis | None, store: redis.Redis, queue: str | Sequence[str]) -> QueueStats:
    """Read the gauges of `queue` (or of each of several; `broker` None for a non-Redis broker). Raises
    Redis errors."""
    queues = _names(queue)
    if broker is None:
        return _stats(queues, None, store.zcard(dead_letter_index_key()))
    pipe = broker.pipeline(transaction=False)
    _broker_calls(pipe, queues)
    if store is broker:
        pipe.zcard(dead_letter_index_key())
        *found, dead = pipe.execute()
        return _stats(queues, found, dead)
    found = pipe.execute()
    return _stats(queues, found, store.zcard(dead_letter_index_key()))


async def aread(
    broker: redis.asyncio.Redis | None, store: redis.asyncio.Redis, queue: str | Sequence[str]
) -> QueueStats:
    """`read` for asyncio clients."""
    queues = _names(queue)
    if broker is None:
        return _stats(queues, None, await store.zcard(dead_letter_index_key()))
    pipe = broker.pipeline(transaction=False)
    _broker_calls(pipe, queues)
    if store is broker:
        pipe.zcard(dead_letter_index_key())
        *found, dead = await pipe.execute()
        return _stats(queues, found, dead)
    found = await pipe.execute()
    return _stats(queues, found, await store.zcard(dead_letter_index_key()))


def families(stats: QueueStats, queue: str | Sequence[str]) -> Iterable[GaugeMetricFamily]:
    """The Prometheus gauges of one reading, one series per queue; unknown values are left out rather
    than guessed. In-flight messages share one hash over every queue: one series, on the first queue."""
    queues = _names(queue)
    per_queue = stats.queues or {queues[0]: (stats.depth or 0, stats.oldest_age)}
    ages = {q: a for q, (_, a) in per_queue.items() if a is not None}
    if ages and stats.depth is not None:
        age = GaugeMetricFamily(
            "frameio_kit_queue_oldest_age_seconds",
            "Seconds the oldest message waiting in the queue has waited (0 when empty): what to autoscale on.",
            labels=["queue"],
        )
        for name, value in ages.items():
            age.add_metric([name], value)
        yield age
    if stats.depth is not None:
        depth = GaugeMetricFamily("frameio_kit_queue_depth", "Messages waiting in the queue.", labels=["queue"])
        for name, (count, _) in per_queue.items():
            depth.add_metric([name], float(count))
        yield depth
    if stats.in_flight is not None:
        in_flight = GaugeMetricFamily(
            "frameio_kit_queue_in_flight",
            "Messages delivered to workers and not yet acknowledged (running, or waiting out a retry delay).",
            labels=["queue"],
        )
        in_flight.add_metric([queues[0]], float(stats.in_flight))
        yield in_flight
    dead = GaugeMetricFamily("frameio_kit_dead_letters", "Events in the dead-letter store.")
    dead.add_metric([], float(stats.dead_letters))
    yield dead


class Reading:
    """A collector holding one reading, for a registry rendered once (a scrape answered from asyncio)."""

    def __init__(self, stats: QueueStats, queue: str | Sequence[str]) -> None:
        self._stats = stats
        self._queue = queue

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return families(self._stats, self._queue)
