"""The worker's side of the event history (shared/events/history.py) and of `@app.on_dead_letter`:
the process's history object, and the hooks called once per dead letter with its summary (never the
body, a form answer, a token or an error's text). A hook that raises or hangs is logged (scrubbed, as
a handler's failure) and never loses the dead letter, which is stored before any hook runs."""

from __future__ import annotations

import asyncio
import logging
import traceback

from shared.core.events import AnyEvent
from shared.events.history import EventHistory
from shared.events.model import DeadLetterSummary, EventIds
from shared.jobs.contract import ActionJob, AnyJob
from shared.jobs.dead_letters import DeadLetter
from shared.jobs.redaction import Redactor
from shared.logs import Multiline
from workers.runtime import WorkerRuntime

logger = logging.getLogger("frameio_kit.worker")

HOOK_TIMEOUT = 30.0
"""Seconds an `@app.on_dead_letter` hook may take before it is cancelled (and logged)."""


def history_of(runtime: WorkerRuntime) -> EventHistory:
    """The process's event history (one Redis client per process, rebuilt after a fork)."""
    return runtime.per_process("event-history", lambda: EventHistory.from_settings(runtime.settings))


def error_class(exc: BaseException) -> str:
    """What the history keeps of an error: its class name, never its text."""
    return type(exc).__name__


def summary_of(
    letter: DeadLetter,
    job: AnyJob | None,
    event: AnyEvent | None = None,
    error: str | None = None,
) -> DeadLetterSummary:
    """The hooks' view of a dead letter: ids, type, reason, attempts, times."""
    ids = EventIds()
    if event is not None:
        ids = EventIds.of_event(event)
    elif job is not None:
        ids = EventIds.from_body(job.body)
        if isinstance(job, ActionJob) and job.context:
            ids = ids.or_else(EventIds.from_mapping(job.context))
    return DeadLetterSummary(
        id=letter.id,
        event_id=job.idempotency_key if job is not None else "",
        task=letter.task,
        type=job.event_type if job is not None else "-",
        handler=job.handler_key if job is not None else "-",
        reason=letter.reason,
        attempts=len(letter.attempts),
        error_class=error,
        received_at=job.received_at if job is not None else None,
        dead_lettered_at=letter.dead_lettered_at,
        **ids.model_dump(),
    )


def notify_dead_letter(runtime: WorkerRuntime, summary: DeadLetterSummary, private: list[str]) -> None:
    """Call every `@app.on_dead_letter` hook with `summary`, one after the other, on the process loop.
    `private` (the job's answers) is scrubbed from what a failing hook's log line quotes."""
    hooks = runtime.app.dead_letter_hooks
    if not hooks:
        return
    for hook in hooks:
        name = getattr(hook, "__qualname__", repr(hook))
        try:
            runtime.run(asyncio.wait_for(hook(summary.model_copy()), HOOK_TIMEOUT))
        except TimeoutError:
            logger.error("on_dead_letter hook %s id=%s: gave up after %.0fs", name, summary.id, HOOK_TIMEOUT)
        except Exception as exc:
            tb = Redactor(private)("".join(traceback.format_exception(exc)))
            logger.error(
                "on_dead_letter hook %s id=%s failed (%s)\n%s", name, summary.id, error_class(exc), Multiline(tb)
            )
