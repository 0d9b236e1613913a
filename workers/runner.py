"""The one job runner behind every task: verify the envelope, load the job, skip it if completed,
run the handler through the middleware chain, record attempts, retry with backoff, dead-letter
after the last attempt or a PermanentError, and count each outcome.

A `JobKind` says what differs between kinds: the job model, the handler table and how to build
the event. Webhooks and action jobs are two kinds; a new kind is one more `JobKind`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from celery import Task
from celery.exceptions import Reject, Retry
from pydantic import ValidationError

from shared import tracing
from shared.actions.state import apply_context
from shared.app.registry import HandlerSpec, Registry
from shared.context import bind_handler, reset_handler
from shared.core.events import ActionEvent, AnyEvent, WebhookEvent
from shared.errors import HandlerFailed, PermanentError, RateLimited
from shared.events.history import AttemptMark
from shared.jobs.contract import ENQUEUED_AT_HEADER, ActionJob, WebhookJob
from shared.jobs.dead_letters import Attempt, Reason
from shared.jobs.publish import message_headers
from shared.jobs.redaction import Redactor
from shared.jobs.signing import issued_at, unsigned
from shared.logs import Multiline, log_info, printable
from shared.settings import get_settings
from workers import deferral, metrics, ordering
from workers.bookkeeping import with_redis
from workers.breaker import breaker_of
from workers.event_log import error_class, history_of, notify_dead_letter, summary_of
from workers.runtime import WorkerRuntime
from workers.timeouts import handler_timeout

logger = logging.getLogger("frameio_kit.worker")

T = TypeVar("T")
J = TypeVar("J", WebhookJob, ActionJob)

# Publishing a retry survives a short broker outage (a Redis restart) instead of failing at once.
_RETRY_PUBLISH_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def retry_delay(attempt: int, base: float | None = None) -> float:
    """Exponential backoff with jitter: base * 2^attempt, scaled by a random 50-100%, capped."""
    settings = get_settings()
    raw = (settings.retry_backoff if base is None else base) * (2**attempt)
    return float(min(raw * random.uniform(0.5, 1.0), settings.retry_delay_cap))  # noqa: S311 - jitter, not crypto


def _webhook_event(job: WebhookJob) -> AnyEvent:
    event = WebhookEvent.model_validate_json(job.body).with_idempotency_key(job.idempotency_key)
    event.timestamp = job.timestamp
    return event


def _action_job_event(job: ActionJob) -> AnyEvent:
    event = apply_context(ActionEvent.model_validate_json(job.body), job.context).with_form_history(job.form_history)
    event.timestamp = job.timestamp
    return event


@dataclass(frozen=True)
class JobKind(Generic[J]):
    """What differs between job kinds; the task name comes from the model (shared/jobs/contract.py)."""

    model: type[J]
    handlers: Callable[[Registry], dict[str, HandlerSpec]]
    build_event: Callable[[J], AnyEvent]

    @property
    def task_name(self) -> str:
        return self.model.task_name


WEBHOOKS: JobKind[WebhookJob] = JobKind(WebhookJob, lambda app: app.webhook_handlers, _webhook_event)
ACTION_JOBS: JobKind[ActionJob] = JobKind(ActionJob, lambda app: app.action_job_handlers, _action_job_event)


class JobRunner(Generic[J]):
    """Runs one task message of one kind; a Celery task hands it `self` and its kwargs."""

    def __init__(self, kind: JobKind[J], runtime: WorkerRuntime) -> None:
        self.kind: JobKind[J] = kind
        self.runtime = runtime

    def __call__(self, task: Task, kwargs: dict[str, Any]) -> None:
        if not tracing.ACTIVE:
            self._run(task, kwargs)
            return
        request = task.request
        attempt = (request.retries or 0) + 1
        wait = tracing.wait_seconds(getattr(request, ENQUEUED_AT_HEADER, None))
        # Every attempt is a child of the span that queued the event: retries carry the same
        # parent (`_failed`), so attempts are siblings under the ingress request.
        parent = tracing.extract(tracing.carried(request))
        with tracing.span(
            f"run/{self.kind.task_name}",
            "CONSUMER",
            parent,
            {
                "messaging.system": "celery",
                "messaging.operation.type": "process",
                "messaging.message.id": str(request.id),
                "messaging.destination.name": (request.delivery_info or {}).get("routing_key"),
                "celery.task_name": self.kind.task_name,
                "frameio_kit.attempt": attempt,
                "frameio_kit.worker": request.hostname,
                "frameio_kit.queue.wait_seconds": wait,
            },
        ):
            self._run(task, kwargs)

    def _run(self, task: Task, kwargs: dict[str, Any]) -> None:
        task_id = str(task.request.id)
        # Before anything else: a job no ingress signed must not reach the store, a handler or a token.
        signer = self.runtime.signer
        verdict = signer.verify(self.kind.task_name, kwargs)
        if verdict == "expired":
            self._refuse(task_id, "expired", f"signed job older than FRAMEIO_KIT_JOB_MAX_AGE ({signer.max_age} s)")
            # Genuine, so its ledger entry is too: left there, the sweep would queue it again and again.
            key = kwargs.get("idempotency_key")
            if isinstance(key, str):
                with_redis("the in-flight ledger", lambda: self.runtime.store.release(key))
                order = kwargs.get("order_key")
                if isinstance(order, str):  # it will never run: its key's next event may (docs/tenants.md)
                    with_redis("the ordering state", lambda: ordering.finish(self.runtime, order, key))
            return
        if verdict != "valid":
            self._refuse(task_id, "unsigned", f"job signature {verdict}")
            return
        try:
            job = self.kind.model.model_validate(unsigned(kwargs))
        except ValidationError:
            self._refuse(task_id, "malformed", "signed job does not match its schema")
            return
        breaker = breaker_of(self.runtime)
        breaker.gate(task, job, kwargs)  # a paused handler's job is held, not attempted (docs/events.md)
        history = history_of(self.runtime)
        mark = history.running(job.idempotency_key, task_id, task.request.retries + 1)
        store = self.runtime.store
        if with_redis("the completion check", lambda: store.is_done(job.idempotency_key, history.started(mark))):
            logger.info("skipped %s task=%s: already completed", job.ids, task_id)
            _record(job.handler_key, "skipped")
            self._release_key(job)  # a crash after the marker and before the key moved on
            return
        app = self.runtime.app
        spec = self.kind.handlers(app).get(job.handler_key)
        if spec is None:
            self._dead_letter(job, "no_handler", f"no handler for {job.handler_key}", task_id, kwargs)
            return
        if spec.ordered_by is not None and with_redis(
            "the ordering gate", lambda: ordering.park(self.runtime, task, job, kwargs)
        ):
            _record(job.handler_key, "parked")  # runs when its key's earlier events are done (docs/tenants.md)
            with_redis("the event history", lambda: history.apply(history.parked(mark)))
            return
        event = self.kind.build_event(job)
        attempt = task.request.retries + 1
        work = app.run(spec, event)
        if tracing.ACTIVE:
            attributes = tracing.event_attributes(event)
            tracing.annotate(**attributes)
            # The handler runs on the process loop's thread, which does not share this thread's context.
            work = tracing.in_context(tracing.context_now(), f"handle {job.handler_key}", work, attributes)
        log_info(logger, "started %s task=%s attempt=%d", job.ids, task_id, attempt)
        started = time.perf_counter()
        failure: Exception | None = None
        handler = bind_handler(job.handler_key)  # the label of its throttled Frame.io calls (docs/limits.md)
        try:
            self.runtime.run(work, handler_timeout(spec, self.runtime.settings))
        except Retry:
            raise
        except Exception as exc:
            failure = exc
        finally:
            reset_handler(handler)
        metrics.observe_handler(job.handler_key, time.perf_counter() - started)
        if failure is not None:
            # Outside the except block: the retry Celery raises must not chain the original
            # exception, whose text would reach task events and Flower unscrubbed.
            self._failed(task, spec, job, kwargs, failure, attempt, started, mark)
            return
        done, reset = history.finished(mark, "done"), breaker.reset_key(job.handler_key)
        with_redis("the completion marker", lambda: store.mark_done(job.idempotency_key, done, reset))
        self._release_key(job)
        breaker.succeeded(task, job.handler_key)  # a paused handler whose probe passed: resumed
        _record(job.handler_key, "done")
        log_info(
            logger,
            "done %s task=%s attempt=%d %.1fms",
            job.ids,
            task_id,
            attempt,
            (time.perf_counter() - started) * 1000,
        )

    def _failed(
        self,
        task: Task,
        spec: HandlerSpec,
        job: J,
        signed: dict[str, Any],
        exc: Exception,
        attempt: int,
        started: float,
        mark: AttemptMark | None = None,
    ) -> None:
        task_id = str(task.request.id)
        history, failed_as = history_of(self.runtime), error_class(exc)
        try:
            deferral.before_failure(self.runtime, task, job, signed, exc)  # RateLimited: deferred (raises Retry)
        except Retry:
            with_redis("the event history", lambda: history.apply(history.finished(mark, "deferred", failed_as)))
            raise
        scrub = Redactor(job.private_values())
        record = Attempt.from_exception(exc, number=attempt, task_id=task_id, started=started, scrub=scrub)
        store = self.runtime.store
        with_redis("the attempt history", lambda: store.record_attempt(job.idempotency_key, record))
        # Past FRAMEIO_KIT_BREAKER_FAILURES consecutive failures: held, not retried (raises Ignore).
        breaker_of(self.runtime).failed(task, job, signed, exc, history.finished(mark, "paused", failed_as))
        max_retries = self.runtime.settings.max_retries if spec.max_retries is None else spec.max_retries
        permanent = isinstance(exc, PermanentError)
        delay = retry_delay(attempt - 1, spec.retry_backoff)
        # A retry re-sends the original envelope: one that would arrive expired (a handler's own max_retries
        # past FRAMEIO_KIT_JOB_MAX_AGE) is dead-lettered now, with its signed job, not refused on arrival.
        issued = issued_at(signed)
        outlived = issued is not None and time.time() + delay - issued > self.runtime.signer.max_age
        deferred_too_long = isinstance(exc, RateLimited)  # before_failure gave up deferring it
        if permanent or deferred_too_long or attempt > max_retries or outlived:
            reason: Reason = deferral.give_up_reason(exc, permanent)
            logger.error(
                "failed %s task=%s attempt=%d (%s)\n%s", job.ids, task_id, attempt, reason, Multiline(record.traceback)
            )
            self._dead_letter(job, reason, record.error, task_id, signed, mark, failed_as)
            return
        with_redis("the event history", lambda: history.apply(history.finished(mark, "retrying", failed_as)))
        logger.warning(
            "retrying %s task=%s attempt=%d in %.1fs\n%s", job.ids, task_id, attempt, delay, Multiline(record.traceback)
        )
        _record(job.handler_key, "retried")
        try:
            raise task.retry(
                exc=HandlerFailed(record.error),
                countdown=delay,
                retry_policy=_RETRY_PUBLISH_POLICY,
                # The retry message gets the same short description as the first: Celery would
                # otherwise put a repr of every kwarg (body, answers) in its headers and events.
                kwargsrepr=job.describe(),
                argsrepr="()",
                headers={**message_headers(tracing.carried(task.request)), **deferral.carried(task.request)},
            )
        except Reject as rejected:
            # Celery acks (drops) a message whose retry could not be published; keep it instead.
            raise Reject(rejected.reason, requeue=True) from None

    def _dead_letter(
        self,
        job: J,
        reason: Reason,
        error: str,
        task_id: str,
        signed: dict[str, Any],
        mark: AttemptMark | None = None,
        failed_as: str | None = None,
    ) -> None:
        """Store the job with `signed`, its kwargs as received: the envelope a replay re-sends unchanged.
        Then the event history and the `@app.on_dead_letter` hooks (after it is stored: they cannot lose it)."""
        store = self.runtime.store
        letter = with_redis("the dead-letter store", lambda: store.dead_letter(job, reason, error, task_id, signed))
        history = history_of(self.runtime)
        dead = history.finished(mark, "dead", failed_as, reason) or history.status(job.idempotency_key, "dead", reason)
        with_redis("the event history", lambda: history.apply(dead))
        self._release_key(job)
        _record(job.handler_key, "dead_lettered")
        logger.error(
            "dead-lettered %s task=%s id=%s attempts=%d: %s", job.ids, task_id, letter.id, len(letter.attempts), reason
        )
        notify_dead_letter(self.runtime, summary_of(letter, job, error=failed_as), job.private_values())

    def _release_key(self, job: J) -> None:
        """Ordered jobs (`ordered_by=`): this one will not run again, so its key's next may."""
        order = getattr(job, "order_key", None)
        if order is not None:
            with_redis("the ordering state", lambda: ordering.finish(self.runtime, order, job.idempotency_key))

    def _refuse(self, task_id: str, reason: Reason, error: str) -> None:
        """Not run, acknowledged, counted and recorded by its ids only (never its content)."""
        store = self.runtime.store
        letter = with_redis("the dead-letter store", lambda: store.refused(self.kind.task_name, task_id, reason, error))
        _record("-", "refused")
        logger.error(
            "refused %s task=%s id=%s: %s (not run)", self.kind.task_name, printable(task_id[:64]), letter.id, error
        )
        notify_dead_letter(self.runtime, summary_of(letter, None), [])


def _record(handler_key: str, outcome: metrics.Outcome) -> None:
    """Count the run's outcome, and put it on the attempt's span."""
    metrics.record_task(handler_key, outcome)
    if tracing.ACTIVE:
        tracing.annotate(**{"frameio_kit.outcome": outcome})
        if outcome in ("retried", "dead_lettered", "refused"):
            tracing.mark_error(tracing.current_span(), outcome)
