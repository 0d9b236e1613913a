"""The action-job task: follow-up work an action handler handed off (`hand_off`), run with the
middleware chain and retried with backoff like a webhook."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Retry

from shared.actions.state import apply_context
from shared.core.events import ActionEvent
from shared.errors import PermanentError
from shared.jobs.contract import HANDLE_ACTION_JOB, ActionJob
from shared.settings import get_settings
from workers import runtime
from workers.celery_app import app
from workers.tasks import dead_letter_store, retry_delay, with_redis

logger = logging.getLogger("frameio_kit.worker")


@app.task(name=HANDLE_ACTION_JOB, bind=True, max_retries=None)
def handle_action_job(self: Task, **payload: Any) -> None:
    job = ActionJob.model_validate(payload)
    attempt = self.request.retries + 1
    task_id = str(self.request.id)
    store = dead_letter_store()
    if with_redis("the completion check", lambda: store.is_done(job.idempotency_key)):
        logger.info("skipped job %s interaction=%s task=%s: already completed", job.job, job.interaction_id, task_id)
        return
    kit = runtime.get_kit_app()
    spec = kit.action_job_handlers.get(job.job)
    if spec is None:
        logger.error("no action job %s (interaction=%s task=%s): dropped", job.job, job.interaction_id, task_id)
        with_redis("the ledger", lambda: store.release(job.idempotency_key))
        return
    event = apply_context(ActionEvent.model_validate_json(job.body), job.context).with_form_history(job.form_history)
    event.timestamp = job.timestamp
    logger.info("started job %s interaction=%s task=%s attempt=%d", job.job, job.interaction_id, task_id, attempt)
    started = time.perf_counter()
    try:
        runtime.run(kit.run(spec, event))
    except Retry:
        raise
    except Exception as exc:
        max_retries = get_settings().max_retries
        if isinstance(exc, PermanentError) or attempt > max_retries:
            logger.error(
                "failed job %s interaction=%s task=%s attempt=%d (%s)",
                job.job,
                job.interaction_id,
                task_id,
                attempt,
                "permanent" if isinstance(exc, PermanentError) else "exhausted",
                exc_info=exc,
            )
            with_redis("the ledger", lambda: store.release(job.idempotency_key))
            return
        delay = retry_delay(attempt - 1)
        logger.warning(
            "retrying job %s interaction=%s task=%s attempt=%d in %.1fs",
            job.job,
            job.interaction_id,
            task_id,
            attempt,
            delay,
            exc_info=exc,
        )
        raise self.retry(exc=exc, countdown=delay) from exc
    with_redis("the completion marker", lambda: store.mark_done(job.idempotency_key))
    logger.info(
        "done job %s interaction=%s task=%s attempt=%d %.1fms",
        job.job,
        job.interaction_id,
        task_id,
        attempt,
        (time.perf_counter() - started) * 1000,
    )
