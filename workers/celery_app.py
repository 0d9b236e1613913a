"""The Celery app that `celery -A workers` finds, configured from settings."""

from __future__ import annotations

from celery import Celery

from shared.settings import Settings, get_settings


def broker_transport_options(settings: Settings) -> dict[str, object]:
    """Redis transport options that make crash redelivery take `visibility_timeout` seconds.

    kombu restores a dead worker's unacknowledged messages only once they are older than the
    visibility timeout, and by default scans for them every 10 x 10 s; scanning every few
    seconds keeps the delay close to the documented value.
    """
    interval = max(1, min(10, settings.visibility_timeout // 4))
    return {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": interval,
        "unacked_restore_throttle": 1,
        # The restore scan runs under a Redis mutex; a worker killed while holding it would stall
        # every other worker's restores until it expires (kombu's default: 300 s).
        "unacked_mutex_expire": max(5, min(300, settings.visibility_timeout // 2)),
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }


def create_celery(settings: Settings) -> Celery:
    app = Celery("frameio_kit", broker=settings.celery_broker_url, set_as_current=True)
    app.conf.update(
        task_default_queue=settings.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=broker_transport_options(settings),
        broker_heartbeat=30,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    return app


app = create_celery(get_settings())
