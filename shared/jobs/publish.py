"""Queue a job through Celery's own producer: the ingress with a non-Redis broker, and replays.

Synchronous (Celery's producer is): async callers run it in a thread.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from shared import tracing
from shared.jobs.celery_config import celery_app
from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.settings import Settings

# Bounded reconnects: the caller has a time budget (the ingress answers Frame.io within 5 s).
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only publishes (no task modules): the web process never loads worker code."""
    return celery_app("frameio_kit_producer", settings, set_as_current=False, broker_connection_timeout=2)


def message_headers(trace: dict[str, str] | None = None) -> dict[str, Any]:
    """Headers every published message carries: the enqueue time and the trace context (`trace`,
    or the current one: pass it explicitly when publishing from another thread)."""
    headers: dict[str, Any] = {ENQUEUED_AT_HEADER: time.time()}
    headers.update(tracing.carrier() if trace is None else trace)
    return headers


def send_task(
    app: Celery,
    task_name: str,
    kwargs: dict[str, Any],
    kwargsrepr: str,
    queue: str,
    trace: dict[str, str] | None = None,
) -> str:
    """Publish one persistent task message; returns the task id. Raises on broker failure."""
    result = app.send_task(
        task_name,
        kwargs=kwargs,
        kwargsrepr=kwargsrepr,
        queue=queue,
        ignore_result=True,
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        headers=message_headers(trace),
    )
    return str(result.id)


def send_signed(app: Celery, task_name: str, signed: dict[str, Any], kwargsrepr: str, queue: str) -> str:
    """Queue an already signed job as it is (dead-letter replays): nothing here signs, so a replay can
    only ever re-send an envelope an ingress signed."""
    return send_task(app, task_name, signed, kwargsrepr, queue)
