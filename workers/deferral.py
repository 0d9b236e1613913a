"""Deferring a job whose handler hit Frame.io's rate limit (`RateLimited`): it is put back to run once the
budget has room, without using up one of its retry attempts, until it has been deferred for longer than
FRAMEIO_KIT_RATE_LIMIT_MAX_DEFER (then it is dead-lettered with reason `rate_limited`).

The job goes back as Celery's retry would send it, through `Task.signature_from_request` and a `Retry`
raised to the worker: the same signed kwargs (never signed anew), the same task id, queue and trace
headers, a countdown; but the attempt count it carries is this run's, not one more. When it was first
deferred travels in a message header (`frameio_kit_deferred_since`), never in the signed kwargs. Nothing
is added to the message the ingress wrote, so de-duplication (at the ingress) never sees the re-sent
message, and the in-flight ledger keeps the job until it completes or is dead-lettered.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Task
from celery.exceptions import Reject, Retry

from shared import tracing
from shared.errors import HandlerFailed, HandlerTimeout, RateLimited
from shared.jobs.contract import AnyJob
from shared.jobs.dead_letters import Reason
from shared.jobs.publish import message_headers
from shared.jobs.signing import issued_at
from shared.logs import log_info
from shared.ratelimit.limiter import deferral_cap, limit_waiters
from workers import metrics
from workers.runtime import WorkerRuntime

logger = logging.getLogger("frameio_kit.worker")

DEFERRED_SINCE_HEADER = "frameio_kit_deferred_since"
"""Message header: when the job was first deferred (Unix seconds); its deferrals end MAX_DEFER after."""
MIN_DELAY = 0.05
JITTER = 0.1
"""Up to this share is added to each delay, so jobs deferred together do not all come back at once."""

WAITERS_PER_BUDGET = 2
"""Calls of one rate budget that may wait for it at once in a worker process: each holds a worker slot
while it waits; the others are deferred at once and come back when the budget has room for them."""


def at_worker_start() -> None:
    """What a worker process sets up for Frame.io's limits (workers/signals.py, at worker_init)."""
    limit_waiters(WAITERS_PER_BUDGET)


_PUBLISH_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def carried(request: Any) -> dict[str, float]:
    """The deferral header of the message being run, to keep on a retry of it (empty when never deferred)."""
    since = getattr(request, DEFERRED_SINCE_HEADER, None)
    return {DEFERRED_SINCE_HEADER: float(since)} if isinstance(since, int | float) else {}


def delay_for(exc: RateLimited, cap: float) -> float:
    """Seconds until the job runs again: the wait RateLimited names, with jitter, at most `cap`
    (`deferral_cap`)."""
    wait = max(exc.retry_after, MIN_DELAY)
    return min(wait * random.uniform(1.0, 1.0 + JITTER), cap)  # noqa: S311 - jitter, not crypto


def defer(runtime: WorkerRuntime, task: Task, job: AnyJob, signed: dict[str, Any], exc: RateLimited) -> None:
    """Send the job again after the rate limit's wait: raises celery's `Retry` (or `Reject` to requeue it
    when the broker does not take it). Returns, having sent nothing, once the job has been deferred for
    longer than FRAMEIO_KIT_RATE_LIMIT_MAX_DEFER (or its signed envelope would expire): the runner then
    dead-letters it with reason `rate_limited`."""
    request = task.request
    task_id = str(request.id)
    settings = runtime.settings
    now = time.time()
    since = carried(request).get(DEFERRED_SINCE_HEADER, now)
    delay = delay_for(exc, deferral_cap(settings))
    issued = issued_at(signed)
    if issued is not None and now + delay - issued > runtime.signer.max_age:
        logger.warning("rate-limited %s task=%s: its signed job would expire while deferred", job.ids, task_id)
        return
    if now + delay - since > settings.rate_limit_max_defer:
        logger.warning(
            "rate-limited %s task=%s: deferred for %.0f s, past FRAMEIO_KIT_RATE_LIMIT_MAX_DEFER (%d s)",
            job.ids,
            task_id,
            now - since,
            settings.rate_limit_max_defer,
        )
        return
    metrics.record_task(job.handler_key, "deferred")
    if tracing.ACTIVE:
        tracing.annotate(**{"frameio_kit.outcome": "deferred"})
    log_info(logger, "deferred %s task=%s in %.1fs: %s", job.ids, task_id, delay, exc)
    headers = {**message_headers(tracing.carried(request)), DEFERRED_SINCE_HEADER: since}
    signature = task.signature_from_request(
        request,
        None,
        None,
        countdown=delay,
        retries=request.retries,  # a deferral is not an attempt
        headers=headers,
        retry_policy=_PUBLISH_POLICY,
        kwargsrepr=job.describe(),
        argsrepr="()",
    )
    try:
        signature.apply_async()
    except Exception as failed:
        # Not sent: keep the message (requeued) rather than lose the job.
        logger.error("deferring %s task=%s failed (%s): requeueing it", job.ids, task_id, type(failed).__name__)
        raise Reject(failed, requeue=True) from None
    raise Retry(exc=HandlerFailed(str(exc)), when=delay, sig=signature)


def before_failure(runtime: WorkerRuntime, task: Task, job: AnyJob, signed: dict[str, Any], exc: Exception) -> None:
    """The runner's hook at a failed run: a timeout is counted; a RateLimited job is deferred (`defer`
    raises Retry), unless it has been deferred too long (then this returns and it is dead-lettered)."""
    if isinstance(exc, HandlerTimeout):
        metrics.TIMEOUTS.labels(job.handler_key).inc()
        logger.warning("timed out %s task=%s: cancelled after %g s", job.ids, task.request.id, exc.seconds)
    elif isinstance(exc, RateLimited):
        defer(runtime, task, job, signed, exc)


def give_up_reason(exc: Exception, permanent: bool) -> Reason:
    """The dead-letter reason of a job given up after `exc`."""
    if permanent:
        return "permanent"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, HandlerTimeout):
        return "timeout"
    return "exhausted"
