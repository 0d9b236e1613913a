"""Which queues a worker consumes (docs/tenants.md): every queue the integration uses (FRAMEIO_KIT_QUEUE and
each handler's `queue=`), or only those named with `--queues` / Celery's `-Q`; each with its account shards.

Done at `worker_init` (workers/signals.py), after Celery selected the `-Q` queues and before the consumer starts: plain
`celery -A workers worker [-Q ...]` gets the same queues as `frameio-kit worker [--queues ...]`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from shared.app.registry import Registry
from shared.jobs.celery_config import declared_queue
from shared.jobs.routing import SHARDS, app_queues, base_queue, check_ordering, physical_queues
from shared.settings import Settings
from workers.runtime import current

logger = logging.getLogger("frameio_kit.worker")


def used_queues(app: Registry, settings: Settings) -> list[str]:
    """The queues the integration's jobs go to: the default queue, then each handler's own."""
    handlers = [*app.webhook_handlers.values(), *app.action_job_handlers.values()]
    return app_queues(settings.queue, (s.queue for s in handlers))


def select(celery: Celery, used: list[str], default: str) -> list[str]:
    """Add the queues to consume to Celery's selection and return them (without shards). Nothing chosen
    (the selection is exactly the default queue and its shards, from the configuration): every queue in
    `used`. Otherwise the chosen queues."""
    queues = celery.amqp.queues
    chosen = list(queues.consume_from)
    if set(chosen) == set(physical_queues(default)):
        wanted = used
    else:
        wanted = list(dict.fromkeys(base_queue(name) for name in chosen))
    for name in wanted:
        for physical in physical_queues(name):
            if physical not in queues.consume_from:
                queues.select_add(declared_queue(physical))
    return wanted


def consume(worker: Any) -> None:
    """At `worker_init` (workers/signals.py, once the integration loaded): add the queues to consume.
    Raises ConfigurationError for `ordered_by=` without a Redis broker."""
    celery = getattr(worker, "app", None)
    if not isinstance(celery, Celery):
        return
    runtime = current()
    app = runtime.app
    check_ordering(runtime.settings, [s.event_type for s in app.webhook_handlers.values() if s.ordered_by is not None])
    used = used_queues(app, runtime.settings)
    wanted = select(celery, used, runtime.settings.queue)
    _chosen[:] = [q for q in wanted if q in used], [q for q in wanted if q not in used]


_chosen: list[list[str]] = []


@worker_ready.connect
def _log_queues(**_: Any) -> None:
    """Once logging is set up (it is not yet at `worker_init`)."""
    if not _chosen:
        return
    consumed, unused = _chosen
    logger.info("consuming queues %s (each with its %d account shards)", ", ".join(consumed + unused), SHARDS)
    if unused:
        logger.warning("no handler of this integration uses queue(s) %s", ", ".join(unused))
