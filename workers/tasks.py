"""The webhook task: rebuild the event, run handler and middleware, retry with backoff."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Task
from celery.exceptions import Retry

from shared.errors import PermanentError
from shared.events import WebhookEvent
from shared.jobs import HANDLE_WEBHOOK, WebhookJob
from shared.settings import get_settings
from workers import runtime
from workers.celery_app import app

logger = logging.getLogger("frameio_kit.worker")


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^attempt, scaled by a random 50-100%, capped."""
    settings = get_settings()
    raw = settings.retry_backoff * (2**attempt)
    return min(raw * random.uniform(0.5, 1.0), settings.retry_delay_cap)  # noqa: S311 - jitter, not crypto


@app.task(name=HANDLE_WEBHOOK, bind=True, max_retries=None)
def handle_webhook(self: Task, **payload: Any) -> None:
    job = WebhookJob.model_validate(payload)
    attempt = self.request.retries
    kit = runtime.get_kit_app()
    spec = kit.webhook_handlers.get(job.event_type)
    if spec is None:
        logger.error("no handler for %s (task %s): dropped", job.event_type, self.request.id)
        return
    event = WebhookEvent.model_validate_json(job.body)
    event.timestamp = job.timestamp
    logger.info("started %s resource=%s task=%s attempt=%d", job.event_type, job.resource_id, self.request.id,
                attempt + 1)
    started = time.perf_counter()
    try:
        runtime.run(kit.run(spec, event))
    except Retry:
        raise
    except PermanentError:
        logger.exception("failed permanently %s resource=%s task=%s", job.event_type, job.resource_id,
                         self.request.id)
        return
    except Exception as exc:
        max_retries = get_settings().max_retries
        if attempt >= max_retries:
            logger.exception("gave up %s resource=%s task=%s after %d attempts", job.event_type, job.resource_id,
                             self.request.id, attempt + 1)
            return
        delay = retry_delay(attempt)
        logger.warning("retrying %s resource=%s task=%s attempt=%d in %.1fs", job.event_type, job.resource_id,
                       self.request.id, attempt + 1, delay, exc_info=True)
        raise self.retry(exc=exc, countdown=delay) from exc
    logger.info("done %s resource=%s task=%s %.1fms", job.event_type, job.resource_id, self.request.id,
                (time.perf_counter() - started) * 1000)
