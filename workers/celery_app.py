"""The Celery app that `celery -A workers` finds, configured from settings."""

from __future__ import annotations

from celery import Celery

from shared.jobs.celery_config import celery_app
from shared.settings import Settings, get_settings


def create_celery(settings: Settings) -> Celery:
    return celery_app(
        "frameio_kit",
        settings,
        set_as_current=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=30,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )


app = create_celery(get_settings())
