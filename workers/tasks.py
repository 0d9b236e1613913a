"""The webhook task: rebuild the event, run handler and middleware, retry with backoff, dead-letter
after the last attempt, and skip events whose handler already completed (redeliveries)."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from celery import Task
from celery.exceptions import Reject, Retry

from shared.core.events import WebhookEvent
from shared.core.registry import HandlerSpec
from shared.errors import PermanentError
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.jobs.dead_letters import Attempt, DeadLetterStore, Reason
from shared.settings import get_settings
from workers import metrics, runtime
from workers.celery_app import app

logger = logging.getLogger("frameio_kit.worker")


T = TypeVar("T")

# Publishing a retry survives a short broker outage (a Redis restart) instead of failing at once.
_RETRY_PUBLISH_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}
_STATE_DEADLINE = 30.0

_store_lock = threading.Lock()
_store: tuple[int, DeadLetterStore] | None = None


def dead_letter_store() -> DeadLetterStore:
    """The process's store (one Redis connection pool per process, rebuilt after a fork)."""
    global _store
    with _store_lock:
        if _store is None or _store[0] != os.getpid():
            _store = (os.getpid(), DeadLetterStore.from_settings(get_settings()))
        return _store[1]


def retry_delay(attempt: int, base: float | None = None) -> float:
    """Exponential backoff with jitter: base * 2^attempt, scaled by a random 50-100%, capped."""
    settings = get_settings()
    raw = (settings.retry_backoff if base is None else base) * (2**attempt)
    return float(min(raw * random.uniform(0.5, 1.0), settings.retry_delay_cap))  # noqa: S311 - jitter, not crypto


def with_redis(what: str, call: Callable[[], T]) -> T:
    """Bookkeeping must not lose the message when Redis blips: retry for a while, then hand the
    message back to the broker unacknowledged-equivalent (requeue) rather than ack it."""
    deadline = time.monotonic() + _STATE_DEADLINE
    delay = 0.1
    while True:
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            if time.monotonic() > deadline:
                logger.error("redis unavailable for %s: requeueing the message", what)
                raise Reject(exc, requeue=True) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@app.task(name=HANDLE_WEBHOOK, bind=True, max_retries=None)
def handle_webhook(self: Task, **payload: Any) -> None:
    job = WebhookJob.model_validate(payload)
    attempt = self.request.retries + 1
    task_id = str(self.request.id)
    store = dead_letter_store()
    if with_redis("the completion check", lambda: store.is_done(job.idempotency_key)):
        logger.info("skipped %s resource=%s task=%s: already completed", job.event_type, job.resource_id, task_id)
        metrics.record_task(job.event_type, "skipped")
        return
    kit = runtime.get_kit_app()
    spec = kit.webhook_handlers.get(job.event_type)
    if spec is None:
        _dead_letter(store, job, "no_handler", f"no handler for {job.event_type}", task_id)
        return
    event = WebhookEvent.model_validate_json(job.body).with_idempotency_key(job.idempotency_key)
    event.timestamp = job.timestamp
    logger.info("started %s resource=%s task=%s attempt=%d", job.event_type, job.resource_id, task_id, attempt)
    started = time.perf_counter()
    try:
        runtime.run(kit.run(spec, event))
    except Retry:
        raise
    except Exception as exc:
        _failed(self, store, spec, job, exc, attempt, started)
        return
    with_redis("the completion marker", lambda: store.mark_done(job.idempotency_key))
    metrics.observe_handler(job.event_type, time.perf_counter() - started)
    metrics.record_task(job.event_type, "done")
    logger.info(
        "done %s resource=%s task=%s attempt=%d %.1fms",
        job.event_type,
        job.resource_id,
        task_id,
        attempt,
        (time.perf_counter() - started) * 1000,
    )


def _failed(
    task: Task, store: DeadLetterStore, spec: HandlerSpec, job: WebhookJob, exc: Exception, attempt: int, started: float
) -> None:
    metrics.observe_handler(job.event_type, time.perf_counter() - started)
    task_id = str(task.request.id)
    record = Attempt.from_exception(exc, number=attempt, task_id=task_id, started=started)
    with_redis("the attempt history", lambda: store.record_attempt(job.idempotency_key, record))
    settings = get_settings()
    max_retries = settings.max_retries if spec.max_retries is None else spec.max_retries
    if isinstance(exc, PermanentError) or attempt > max_retries:
        reason: Reason = "permanent" if isinstance(exc, PermanentError) else "exhausted"
        logger.error(
            "failed %s resource=%s task=%s attempt=%d (%s)",
            job.event_type,
            job.resource_id,
            task_id,
            attempt,
            reason,
            exc_info=exc,
        )
        _dead_letter(store, job, reason, record.error, task_id)
        return
    delay = retry_delay(attempt - 1, spec.retry_backoff)
    logger.warning(
        "retrying %s resource=%s task=%s attempt=%d in %.1fs",
        job.event_type,
        job.resource_id,
        task_id,
        attempt,
        delay,
        exc_info=exc,
    )
    metrics.record_task(job.event_type, "retried")
    try:
        raise task.retry(exc=exc, countdown=delay, retry_policy=_RETRY_PUBLISH_POLICY)
    except Reject as rejected:
        # Celery acks (drops) a message whose retry could not be published; keep it instead.
        raise Reject(rejected.reason, requeue=True) from exc


def _dead_letter(store: DeadLetterStore, job: WebhookJob, reason: Reason, error: str, task_id: str) -> None:
    letter = with_redis("the dead-letter store", lambda: store.dead_letter(job, reason, error))
    metrics.record_task(job.event_type, "dead_lettered")
    logger.error(
        "dead-lettered %s resource=%s task=%s id=%s attempts=%d: %s",
        job.event_type,
        job.resource_id,
        task_id,
        letter.id,
        len(letter.attempts),
        reason,
    )
