"""Every Redis client this package opens, built here with the timeouts of the role it plays.

One table, so a slow Redis is felt the same way everywhere a role appears: the ingress answers
Frame.io within 5 s, workers may wait longer for bookkeeping, probes must answer fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis
import redis.asyncio

Role = Literal["ingress", "tokens", "worker", "probe", "limiter"]


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    max_connections: int | None = None
    health_check_interval: int = 0


ROLE_TIMEOUTS: dict[Role, Timeouts] = {
    # The request path: a stuck Redis must surface inside the enqueue budget (<= 4.5 s).
    "ingress": Timeouts(connect=1.0, read=2.0, max_connections=64, health_check_interval=30),
    # Token records and refresh locks, from the ingress and from workers.
    "tokens": Timeouts(connect=1.0, read=3.0),
    # Worker bookkeeping (completion markers, attempts, dead letters, ledger sweeps): retried by the caller.
    "worker": Timeouts(connect=2.0, read=5.0),
    # Health checks and metrics scrapes: an absent answer beats a late one.
    "probe": Timeouts(connect=1.0, read=1.0),
    # The shared rate limiter, before every Frame.io call: a slow Redis lets the call through instead.
    "limiter": Timeouts(connect=0.5, read=1.0),
}


def sync_client(url: str, role: Role) -> redis.Redis:
    """A blocking client for `role` (workers, CLI, probes)."""
    t = ROLE_TIMEOUTS[role]
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=t.connect,
        socket_timeout=t.read,
        max_connections=t.max_connections,
        health_check_interval=t.health_check_interval,
    )


def async_client(url: str, role: Role) -> redis.asyncio.Redis:
    """An asyncio client for `role` (the ingress, token managers on an event loop)."""
    t = ROLE_TIMEOUTS[role]
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=t.connect,
        socket_timeout=t.read,
        max_connections=t.max_connections,
        health_check_interval=t.health_check_interval,
    )
