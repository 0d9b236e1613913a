"""A background thread in each worker process that queues stranded webhook messages again
(see shared/jobs/ledger.py). Only for a Redis broker: AMQP has no pop-before-record gap."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from shared.jobs.ledger import sweep_ledger
from shared.redis_client import sync_client
from workers.runtime import WorkerRuntime, current

logger = logging.getLogger("frameio_kit.worker")


def sweep_interval(visibility_timeout: int) -> float:
    return float(max(1, min(30, visibility_timeout // 4)))


def _sweep_forever(runtime: WorkerRuntime) -> None:
    settings = runtime.settings
    client = sync_client(settings.queue_redis_url, "worker")
    interval = sweep_interval(settings.visibility_timeout)
    while not runtime.ledger_stop.wait(interval):
        try:
            sweep_ledger(client, settings.queue, settings.ledger_stale_after, lock_seconds=int(interval))
        except (redis.RedisError, OSError) as exc:
            logger.warning("ledger sweep skipped: %s", type(exc).__name__)
    client.close()


@worker_ready.connect
def _start(**_: Any) -> None:
    runtime = current()
    if not runtime.settings.broker_is_redis:
        return
    runtime.ledger_stop.clear()
    threading.Thread(target=_sweep_forever, args=(runtime,), name="frameio-kit-ledger", daemon=True).start()


@worker_shutdown.connect
def _finish(**_: Any) -> None:
    current().ledger_stop.set()
