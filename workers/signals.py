"""Worker lifecycle: load the integration and the job-signing keys at start so a bad FRAMEIO_APP, a
missing key or an unsupported Celery fails fast, and set up tracing; stop the loop and flush spans at the end."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, worker_init, worker_process_shutdown, worker_shutdown

from shared import redis_direct, tracing
from shared.errors import ConfigurationError
from shared.jobs import kombu_redis
from shared.logs import configure_logging
from shared.oauth.token_manager import check_keys_at_start_up
from shared.settings import get_settings
from workers import celery_compat, deferral, queues
from workers.runtime import current
from workers.timeouts import check_handler_timeouts


@setup_logging.connect
def _configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Workers log like the ingress (FRAMEIO_KIT_LOG_FORMAT); connecting here keeps Celery's own set-up out."""
    configure_logging(get_settings(), buffered=True)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
    # Celery's own "Received task" / "Task succeeded" lines repeat ours (which carry the event type
    # and resource id): one line per transition, so theirs only when something goes wrong.
    for name in ("celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_init.connect
def _load_integration(sender: Any = None, **_: Any) -> None:
    tracing.configure_tracing(get_settings(), "frameio-kit-worker")
    runtime = current()
    runtime.signer  # noqa: B018 - built now, so a missing key stops the worker at start
    try:
        celery_compat.check()  # an unsupported Celery would lose requeue-at-shutdown silently
        kombu_redis.check()
        redis_direct.check()
        check_keys_at_start_up(runtime.app.oauth, get_settings())
        check_handler_timeouts(runtime.app, get_settings())  # docs/limits.md
        deferral.at_worker_start()
        queues.consume(sender)  # the integration's queues and their shards (docs/tenants.md)
    except ConfigurationError as exc:
        # Celery logs and ignores exceptions from signal handlers; SystemExit is what stops `celery -A workers worker`.
        raise SystemExit(f"frameio-kit: configuration error: {exc}") from None


@worker_shutdown.connect
def _stop_loop(**_: Any) -> None:
    runtime = current()
    try:  # close the loop's API client and token manager (HTTP + Redis) before the loop stops
        runtime.run(runtime.app.aclose())
    except Exception:
        logging.getLogger("frameio_kit.worker").warning("closing clients at shutdown failed", exc_info=True)
    runtime.stop_loop()
    tracing.shutdown()


@worker_process_shutdown.connect
def _flush_logs(**_: Any) -> None:
    """A prefork child leaves with os._exit, skipping the exit-time flush of buffered log lines."""
    for handler in logging.getLogger().handlers:
        handler.flush()
