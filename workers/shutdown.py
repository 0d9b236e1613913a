"""Graceful worker shutdown: on SIGTERM, running handlers get FRAMEIO_KIT_SHUTDOWN_GRACE seconds to finish;
what is still running or waiting in the worker then goes back to the queue, and the process exits.

Celery's warm shutdown alone waits without limit, and an orchestrator's SIGKILL after its own grace
period would leave the messages unacknowledged until the visibility timeout brings them back.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_shutting_down

from workers import celery_compat
from workers.runtime import current

logger = logging.getLogger("frameio_kit.worker")

_EXIT_REQUEUED = 1


@worker_shutting_down.connect
def _start_grace_period(sig: str = "", how: str = "", **_: Any) -> None:
    runtime = current()
    if how != "Warm" or runtime.grace_timer is not None:
        return
    grace = runtime.settings.shutdown_grace
    running = celery_compat.running_count()
    logger.info("shutting down on %s: %d handlers running, waiting up to %.0fs for them", sig, running, grace)
    timer = runtime.grace_timer = threading.Timer(grace, _requeue_and_exit)
    timer.daemon = True
    timer.start()


def _requeue_and_exit() -> None:
    """The grace period is over: hand every unfinished message back to the broker, then exit at once
    (the handler threads cannot be interrupted; a later redelivery runs them again)."""
    pending = celery_compat.held_requests()
    requeued = 0
    for request in pending:
        if request.acknowledged:
            continue
        try:
            # Straight to the channel: Request.reject only schedules the reject on the consumer's
            # event loop, which is busy shutting down and would never run it.
            request.message.reject(requeue=True)
            requeued += 1
        except Exception:
            # The unacknowledged message still comes back after the visibility timeout.
            logger.exception("could not requeue task %s", request.id)
    logger.warning("grace period over: requeued %d unfinished tasks, exiting", requeued)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(_EXIT_REQUEUED)
