"""Pausing a failing handler, in the worker: after FRAMEIO_KIT_BREAKER_FAILURES consecutive failed
attempts of one handler (0: never) it is paused; a paused handler's jobs are held (set aside with their
signed job, acknowledged, never attempted or dead-lettered) and one probe job every
FRAMEIO_KIT_BREAKER_PROBE seconds is let through; a probe that succeeds resumes the handler and queues
the held jobs again. An operator's pause (`frameio-kit handlers pause`) holds jobs the same way, with no
probe, until `handlers resume`. The state is in Redis (shared/events/pauses.py); each process reads the
paused handlers at most once a second, so a pause reaches every worker within about a second.

Flower shows a held task in the state PAUSED: the worker sends a custom `task-paused` event (Celery's
`Task.send_event`, which Flower's event state turns into a state named after the event) and ends the task
with `Ignore`, so no `task-succeeded` follows to overwrite it. Nothing in Flower is patched.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore
from celery.signals import worker_ready, worker_shutdown

from shared.errors import PermanentError, RateLimited
from shared.events.history import EventHistory
from shared.events.pauses import HandlerPauses, HeldJob, PauseInfo, Send
from shared.jobs.contract import AnyJob
from shared.jobs.dead_letters import RecordUpdate
from shared.jobs.publish import send_signed
from shared.logs import log_info
from shared.redis_client import sync_client
from shared.redis_keys import handler_failures_key
from shared.settings import Settings
from workers import metrics
from workers.bookkeeping import with_redis
from workers.event_log import history_of
from workers.runtime import WorkerRuntime, current

logger = logging.getLogger("frameio_kit.worker")

_REFRESH = 1.0


class Breaker:
    """One per worker process (`breaker_of`): the gate in front of each job, the failure count behind it."""

    def __init__(self, settings: Settings, client: redis.Redis, history: EventHistory) -> None:
        self.threshold = settings.breaker_failures
        self.probe_every = settings.breaker_probe
        self._queue = settings.queue
        self.pauses = HandlerPauses.from_settings(settings, client)
        self._history = history
        self._paused: dict[str, PauseInfo] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def paused(self) -> dict[str, PauseInfo]:
        """The paused handlers, read from Redis at most once a second (the last reading while Redis is down)."""
        now = time.monotonic()
        if now - self._read_at >= _REFRESH:
            with self._lock:
                if now - self._read_at >= _REFRESH:
                    try:
                        self._paused = self.pauses.paused()
                    except (redis.RedisError, OSError):
                        pass  # the job's own bookkeeping will wait for Redis; this gate keeps what it knew
                    self._read_at = now
        return self._paused

    def gate(self, task: Task, job: AnyJob, signed: dict[str, Any]) -> None:
        """Before a job runs: a paused handler's job is held (raises `Ignore`), unless it is the probe."""
        handler = job.handler_key
        info = self.paused().get(handler)
        if info is None:
            return
        if info.by == "breaker" and with_redis(
            "the breaker's probe", lambda: self.pauses.take_probe(handler, job.idempotency_key, self.probe_every)
        ):
            logger.warning("probe %s task=%s: one job of the paused handler %s runs", job.ids, task.request.id, handler)
            return
        self._hold(task, job, signed, self._history.status(job.idempotency_key, "paused"))  # or resumed: runs

    def reset_key(self, handler: str) -> str | None:
        """The failure count a success starts again from zero (deleted with the completion marker)."""
        return handler_failures_key(handler) if self.threshold > 0 else None

    def failed(
        self, task: Task, job: AnyJob, signed: dict[str, Any], exc: Exception, update: RecordUpdate | None
    ) -> None:
        """After a failed attempt: count it; the one that reaches the threshold pauses the handler (and
        goes on to its retry or dead letter); any later one is held (raises `Ignore`), so a paused
        handler's dead letters stop at the threshold. A PermanentError is about its event, not the
        handler's health, and a RateLimited one is Frame.io's budget: neither is counted."""
        if self.threshold <= 0 or isinstance(exc, PermanentError | RateLimited):
            return
        handler = job.handler_key
        count = with_redis("the breaker's count", lambda: self.pauses.count_failure(handler))
        if count < self.threshold:
            return
        info = PauseInfo(by="breaker", at=time.time(), failures=count)
        if with_redis("the paused handlers", lambda: self.pauses.pause(handler, info, keep_existing=True)):
            logger.error(
                "paused handler %s after %d consecutive failed attempts: its jobs are held, a probe runs every %gs",
                handler,
                count,
                self.probe_every,
            )
            with self._lock:  # known here at once; other processes read it within a second
                self._paused = {**self._paused, handler: info}
        if count > self.threshold:
            self._hold(task, job, signed, update)  # resumed meanwhile: on to its retry or dead letter

    def succeeded(self, task: Task, handler: str) -> None:
        """After a success: a handler the breaker paused works again (its probe passed): resume it."""
        info = self._paused.get(handler)
        if info is not None and info.by == "breaker":
            self.resume(handler, "a probe succeeded", _sender(task.app))

    def resume(self, handler: str, why: str, send: Send) -> int:
        """Resume `handler` if the breaker paused it (an operator's pause stays) and queue its held jobs
        again; how many were queued."""
        if not with_redis("the paused handlers", lambda: self.pauses.resume(handler, only_breaker=True)):
            return 0
        with self._lock:
            self._paused = {k: v for k, v in self._paused.items() if k != handler}
        moved = with_redis("the held jobs", lambda: self.pauses.requeue(handler, send))
        logger.warning("resumed handler %s (%s): %d held job(s) queued again", handler, why, moved)
        return moved

    def _hold(self, task: Task, job: AnyJob, signed: dict[str, Any], update: RecordUpdate | None) -> None:
        """Hold the job (raises `Ignore`), or return when the handler was resumed meanwhile (this process's
        view of the paused handlers is up to a second old; the hold script checks the pause atomically)."""
        handler = job.handler_key
        queue = (task.request.delivery_info or {}).get("routing_key") or self._queue
        entry = HeldJob(task=job.task_name, queue=queue, key=job.idempotency_key, signed=signed)
        held = with_redis("the held jobs", lambda: self.pauses.hold(handler, entry, update))
        if held < 0:
            with self._lock:
                self._paused = {k: v for k, v in self._paused.items() if k != handler}
            return
        metrics.record_task(handler, "held")
        log_info(
            logger, "held %s task=%s: handler %s is paused (%d held)", job.ids, str(task.request.id), handler, held
        )
        try:
            task.send_event("task-paused", handler=handler, held=held)
        except Exception:  # the events exchange is monitoring only; the job is held either way
            logger.debug("task-paused event not sent", exc_info=True)
        raise Ignore()


def _sender(app: Any) -> Send:
    """Re-send held jobs through Celery's producer (brokers other than Redis): signed as they were."""

    def send(task_name: str, signed: dict[str, Any], describe: str, queue: str) -> str:
        return send_signed(app, task_name, signed, describe, queue)

    return send


def breaker_of(runtime: WorkerRuntime) -> Breaker:
    """The process's breaker (its own Redis client on the queue's Redis, rebuilt after a fork)."""
    return runtime.per_process("breaker", lambda: _build(runtime))


def _build(runtime: WorkerRuntime) -> Breaker:
    settings = runtime.settings
    return Breaker(settings, sync_client(settings.queue_redis_url, "worker"), history_of(runtime))


def probe_interval(probe: float) -> float:
    return max(0.2, min(5.0, probe / 2))


def release_probes(breaker: Breaker, send: Send) -> int:
    """For each handler the breaker paused whose probe is due and that holds jobs: queue its oldest held
    job again as the probe (it takes the probe lock, so the worker that gets it runs it). How many."""
    released = 0
    for handler, info in breaker.pauses.paused().items():
        if info.by != "breaker":
            continue
        oldest = breaker.pauses.oldest_held(handler)
        if oldest is None or not breaker.pauses.take_probe(handler, oldest, breaker.probe_every, only_new=True):
            continue
        released += breaker.pauses.requeue(handler, send, limit=1)
    return released


_stop = threading.Event()


def _probe_forever(runtime: WorkerRuntime) -> None:
    from workers.celery_app import app

    send = _sender(app)
    interval = probe_interval(runtime.settings.breaker_probe)
    while not _stop.wait(interval):
        try:
            release_probes(breaker_of(runtime), send)
        except (redis.RedisError, OSError) as exc:
            logger.warning("breaker probe skipped: %s", type(exc).__name__)
        except Exception:
            logger.exception("breaker probe failed")


@worker_ready.connect
def _start(**_: Any) -> None:
    runtime = current()
    if runtime.settings.breaker_failures <= 0:
        return  # no breaker: an operator's pause lasts until `handlers resume`, with no probe
    _stop.clear()
    threading.Thread(target=_probe_forever, args=(runtime,), name="frameio-kit-breaker", daemon=True).start()


@worker_shutdown.connect
def _finish(**_: Any) -> None:
    _stop.set()
