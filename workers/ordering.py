"""The worker's side of per-key ordering (`ordered_by=`, docs/tenants.md; the protocol is in
shared/jobs/ordering.py): the gate before a handler runs, the hand-over when its job is done with, and
a thread that moves on keys whose head was lost.

The runner calls `park` after the completion check and `finish` once a job's fate is settled
(completed, dead-lettered, refused as expired, or found completed already), so a key is held from
its head's first attempt through its retries and released exactly when the head will not run again.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from celery import Task
from celery.signals import worker_ready, worker_shutdown

from shared.jobs.contract import ActionJob, WebhookJob
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.ordering import OrderingStore
from shared.jobs.routing import Router
from shared.logs import log_info
from shared.redis_client import sync_client
from workers.runtime import WorkerRuntime, current

logger = logging.getLogger("frameio_kit.worker")

_lock = threading.Lock()
_store: tuple[int, OrderingStore] | None = None
_stop = threading.Event()


def store(runtime: WorkerRuntime) -> OrderingStore:
    """The process's ordering store on the broker's Redis (rebuilt after a fork)."""
    global _store
    with _lock:
        if _store is None or _store[0] != os.getpid():
            settings = runtime.settings
            _store = (os.getpid(), OrderingStore(sync_client(settings.queue_redis_url, "worker"), settings))
        return _store[1]


def park(runtime: WorkerRuntime, task: Task, job: WebhookJob | ActionJob, signed: dict[str, Any]) -> bool:
    """True when the job was parked (its key's head is another job): the caller acknowledges it and
    returns. The parked copy is the signed job as received, for the queue it came from."""
    order_key = getattr(job, "order_key", None)
    if order_key is None:
        return False
    queue = (task.request.delivery_info or {}).get("routing_key")
    if not isinstance(queue, str) or not queue:
        queue = Router(runtime.settings).queue_for_job(job.queue, job.body)
    target = queue

    def message() -> bytes:
        return build_task_message(job.task_name, signed, job.describe(), target)

    gate = store(runtime).gate(order_key, job.idempotency_key, queue, message)
    if gate.verdict == "parked":
        log_info(
            logger,
            "parked %s task=%s seq=%d: an earlier event of its key is not done",
            job.ids,
            task.request.id,
            gate.seq,
        )
        return True
    return False


def finish(runtime: WorkerRuntime, order_key: str | None, idempotency_key: str) -> None:
    """The job will not run again: let its key's next job go (idempotent)."""
    if order_key is None:
        return
    released = store(runtime).finish(order_key, idempotency_key)
    if released:
        log_info(logger, "ordering: key %s… seq %d queued again (its turn)", order_key[:12], released)


def _sweep_forever(runtime: WorkerRuntime) -> None:
    interval = float(max(1, min(30, runtime.settings.visibility_timeout // 4)))
    while not _stop.wait(interval):
        try:
            store(runtime).skip_stuck(lock_seconds=int(interval))
        except (redis.RedisError, OSError) as exc:
            logger.warning("ordering sweep skipped: %s", type(exc).__name__)


@worker_ready.connect
def _start(**_: Any) -> None:
    runtime = current()
    if not runtime.settings.broker_is_redis:
        return
    if not any(spec.ordered_by is not None for spec in runtime.app.webhook_handlers.values()):
        return
    _stop.clear()
    threading.Thread(target=_sweep_forever, args=(runtime,), name="frameio-kit-ordering", daemon=True).start()


@worker_shutdown.connect
def _finish(**_: Any) -> None:
    _stop.set()
