"""The Celery tasks, one per job kind, under the stable names of shared/jobs/contract.py. Each hands
its message to the job runner (workers/runner.py)."""

from __future__ import annotations

from typing import Any

from celery import Task

from shared.jobs.contract import HANDLE_ACTION_JOB, HANDLE_WEBHOOK
from workers.celery_app import app
from workers.runner import ACTION_JOBS, WEBHOOKS, JobRunner
from workers.runtime import current

_webhooks = JobRunner(WEBHOOKS, current())
_action_jobs = JobRunner(ACTION_JOBS, current())


@app.task(name=HANDLE_WEBHOOK, bind=True, max_retries=None)
def handle_webhook(self: Task, **kwargs: Any) -> None:
    """A webhook delivery the ingress verified and queued."""
    _webhooks(self, kwargs)


@app.task(name=HANDLE_ACTION_JOB, bind=True, max_retries=None)
def handle_action_job(self: Task, **kwargs: Any) -> None:
    """Follow-up work an action handler handed off (`hand_off`)."""
    _action_jobs(self, kwargs)
