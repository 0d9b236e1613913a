"""Ingress Prometheus metrics, served on GET /metrics: requests by kind and outcome, enqueue and action
latency, and the queue gauges (oldest message's age, depth, in flight, dead letters) read per scrape.

On the hot path: one dict lookup and one locked increment per request; label children are cached.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import Counter as _CounterT
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingress.state import IngressState
from shared.errors import RequestRejected, ServiceUnavailable
from shared.events.pauses import PauseReading, aread_pauses, pause_families
from shared.hmac_sign import same
from shared.jobs import queue_stats
from shared.ratelimit.limiter import observe_throttles
from shared.settings import Settings

REQUESTS = Counter(
    "frameio_kit_ingress_requests",
    "POSTs to the ingress by kind (webhook, action, unhandled, unknown) and outcome.",
    ["kind", "outcome"],
)
ENQUEUE_SECONDS = Histogram(
    "frameio_kit_ingress_enqueue_seconds",
    "Time to put a verified webhook durably on the queue.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ACTION_SECONDS = Histogram(
    "frameio_kit_ingress_action_seconds",
    "Time from request to answer for custom-action steps (Frame.io gives up after 5 s).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 10),
)

THROTTLED = Counter(
    "frameio_kit_ingress_throttled_calls",
    "Frame.io calls made in the ingress (action handlers by event type; sign-in and install as '-') held by the "
    "shared rate limit: waited for budget, refused or 429 (docs/limits.md).",
    ["event_type", "outcome"],
)

_children: dict[tuple[str, str], _CounterT] = {}


def count_throttled(kind: str, handler: str) -> None:
    """One Frame.io call held by the rate limiter (shared/ratelimit), under the handler it ran in."""
    THROTTLED.labels(handler, kind).inc()


observe_throttles(count_throttled)


def count_request(kind: str, outcome: str) -> None:
    """Count one answered request; outcomes like "answered (cached)" become `answered_cached`."""
    child = _children.get((kind, outcome))
    if child is None:
        label = outcome.replace("(", "").replace(")", "").strip().replace(" ", "_")
        child = _children[(kind, outcome)] = REQUESTS.labels(kind, label)
    child.inc()


def count_rejected(kind: str, exc: Exception) -> None:
    """Count a request that ended in an exception, by the status it maps to."""
    if isinstance(exc, RequestRejected):
        count_request(kind, f"rejected_{exc.status_code}")
    elif isinstance(exc, ServiceUnavailable):
        count_request(kind, "unavailable_503")
    else:
        count_request(kind, "error_500")


def observe_enqueue(started: float) -> None:
    ENQUEUE_SECONDS.observe(time.perf_counter() - started)


def observe_action(started: float) -> None:
    ACTION_SECONDS.observe(time.perf_counter() - started)


def is_loopback(host: str | None) -> bool:
    """True for loopback addresses and for None (a Unix socket: only this machine connects)."""
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed_without_token(settings: Settings) -> bool:
    """Bound beyond loopback with no FRAMEIO_KIT_METRICS_TOKEN: /metrics is then refused (docs/decisions.md)."""
    return settings.metrics_token is None and not is_loopback(settings.host)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format. Behind `Authorization: Bearer FRAMEIO_KIT_METRICS_TOKEN` when that is
    set; without a token, served only on loopback: judged by the bind address (FRAMEIO_KIT_HOST,
    which `--host` sets) and by the address the connection arrived on, so that an ingress started
    by other means on 0.0.0.0 does not serve its counters to the network either."""
    state: IngressState = request.app.state.kit
    token = state.settings.metrics_token
    if token is None:
        server = request.scope.get("server")
        if exposed_without_token(state.settings) or not is_loopback(server[0] if server else None):
            return JSONResponse(
                {"error": "metrics are served beyond loopback only with FRAMEIO_KIT_METRICS_TOKEN set"},
                status_code=403,
            )
    else:
        expected = f"Bearer {token.get_secret_value()}".encode()
        provided = request.headers.get("authorization", "").encode()
        if not same(expected, provided):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(REGISTRY) + await _queue_gauges(state), media_type=CONTENT_TYPE_LATEST)


async def _queue_gauges(state: IngressState) -> bytes:
    """The queue gauges (shared/jobs/queue_stats.py), read for this scrape; none while Redis does
    not answer within a second."""
    settings = state.settings
    try:
        async with asyncio.timeout(1.0):
            broker = state.queue_redis if settings.broker_is_redis else None
            stats = await queue_stats.aread(broker, state.redis, state.queues)
            paused, held = await aread_pauses(state.queue_redis)  # paused handlers (docs/events.md)
    except (RedisError, OSError, TimeoutError):
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(queue_stats.Reading(stats, state.queues))
    handlers = [*state.app.webhook_handlers, *state.app.action_job_handlers]
    registry.register(PauseReading(pause_families(paused, held, handlers)))
    return generate_latest(registry)
