"""Worker-side Prometheus metrics: tasks of every kind by outcome, handler duration, retries and the
queue gauges (oldest message's age, depth, in flight, dead letters).

Served on FRAMEIO_KIT_WORKER_METRICS_PORT (0: off) by the worker's main process once it is ready.
Counters live in the process that runs the handlers: the threads and solo pools (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

import redis
from celery.signals import worker_ready
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.jobs import queue_stats
from shared.ratelimit.limiter import observe_throttles
from shared.redis_client import sync_client
from shared.settings import Settings, get_settings

logger = logging.getLogger("frameio_kit.worker")

Outcome = Literal["done", "retried", "dead_lettered", "skipped", "refused", "parked", "deferred", "held"]

TASKS = Counter(
    "frameio_kit_worker_tasks",
    "Task runs (webhooks by event type, action jobs by job name; refused jobs as '-') by outcome.",
    ["event_type", "outcome"],
)
RETRIES = Counter("frameio_kit_worker_retries", "Handler runs that failed and were scheduled again.", ["event_type"])
HANDLER_SECONDS = Histogram(
    "frameio_kit_worker_handler_seconds",
    "Time spent in a webhook or action-job handler (middleware included), successful or not.",
    ["event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
# Frame.io's limits (docs/limits.md): deferred runs are TASKS{outcome="deferred"}.
THROTTLED = Counter(
    "frameio_kit_worker_throttled_calls",
    "Frame.io calls from handlers held by the shared rate limit: waited for budget, refused (job deferred) or 429.",
    ["event_type", "outcome"],
)
TIMEOUTS = Counter(
    "frameio_kit_worker_handler_timeouts", "Handler runs cancelled past their time limit.", ["event_type"]
)


# Label children, cached: `labels()` takes a lock and builds a key on every call.
_task_children: dict[tuple[str, str], Any] = {}
_handler_children: dict[str, Any] = {}


def record_task(event_type: str, outcome: Outcome) -> None:
    """Count one task run by how it ended."""
    child = _task_children.get((event_type, outcome))
    if child is None:
        child = _task_children[(event_type, outcome)] = TASKS.labels(event_type, outcome)
    child.inc()
    if outcome == "retried":
        RETRIES.labels(event_type).inc()


def count_throttled(kind: str, handler: str) -> None:
    """One Frame.io call held by the rate limiter (shared/ratelimit), under the handler it ran in."""
    THROTTLED.labels(handler, kind).inc()


observe_throttles(count_throttled)


def observe_handler(event_type: str, seconds: float) -> None:
    """Time one handler run, whether it succeeded or raised."""
    child = _handler_children.get(event_type)
    if child is None:
        child = _handler_children[event_type] = HANDLER_SECONDS.labels(event_type)
    child.observe(seconds)


class QueueCollector(Collector):
    """The queue gauges (shared/jobs/queue_stats.py: oldest message's age, depth, in flight, dead
    letters), read from Redis at scrape time."""

    def __init__(self, settings: Settings, queues: list[str] | None = None) -> None:
        self._queue = queues or [settings.queue]  # each queue the integration uses (docs/tenants.md)
        self._store = sync_client(settings.redis_url, "probe")
        self._broker: redis.Redis | None = None
        if settings.broker_is_redis:
            same = settings.queue_redis_url == settings.redis_url
            self._broker = self._store if same else sync_client(settings.queue_redis_url, "probe")

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            stats = queue_stats.read(self._broker, self._store, self._queue)
        except (redis.RedisError, OSError):
            return []  # an absent sample beats a wrong one; the worker's own logs say Redis is down
        return list(queue_stats.families(stats, self._queue))


_serving = False


def _used_queues(settings: Settings) -> list[str]:
    from workers.queues import used_queues  # the integration is loaded by now (worker_init)
    from workers.runtime import current

    return used_queues(current().app, settings)


def _pause_collector(settings: Settings) -> Collector:
    """Paused handlers (workers/breaker.py): every handler of the integration, 1 while paused."""
    from shared.events.pauses import PauseCollector
    from workers.runtime import current

    app = current().app
    client = sync_client(settings.queue_redis_url, "probe")
    return PauseCollector(client, lambda: [*app.webhook_handlers, *app.action_job_handlers])


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    global _serving
    settings = get_settings()
    if _serving or not settings.worker_metrics_port:
        return
    try:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    except OSError as exc:
        logger.warning("metrics not served: cannot bind %s:%d (%s)", settings.host, settings.worker_metrics_port, exc)
        return
    REGISTRY.register(QueueCollector(settings, _used_queues(settings)))
    REGISTRY.register(_pause_collector(settings))
    _serving = True
    logger.info("metrics served on http://%s:%d/metrics", settings.host, settings.worker_metrics_port)
