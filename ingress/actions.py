"""Answering custom actions: resource filter, per-interaction state (bound to its first step's
owner, bounded), replayed retries, the time budget and hand-off to the workers (docs/actions.md).

Frame.io waits 5 s for an answer and retries a step it did not get one for; `interaction_id` is
the only thread through a multi-step form.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import Any

import orjson
from starlette.responses import Response

from ingress.oauth import answer_as_user
from ingress.state import IngressState
from shared.actions.state import (
    ActionState,
    Interaction,
    Owner,
    StepResult,
    apply_context,
    build_action_state,
    context_of,
    step_key,
)
from shared.app.registry import HandlerSpec
from shared.context import bind_hand_off, bind_handler, reset_hand_off, reset_handler
from shared.core.events import ActionEvent
from shared.core.ui import AnyResponse, Form, Message
from shared.errors import ActionStateUnavailable, ActionStepRefused, RateLimited, StepStillRunning
from shared.jobs.contract import HANDLE_ACTION_JOB, ActionJob, action_job_key
from shared.jobs.redaction import scrubbed_traceback, string_leaves

logger = logging.getLogger("frameio_kit.ingress")

NOT_AVAILABLE_TITLE = "Action Not Available"  # v0.0.10's words, as are not_available()'s


def not_available(spec: HandlerSpec) -> Message:
    """The refusal of an action run on a resource type it is not for: names the types it is for."""
    types = ", ".join(sorted(spec.resource_types))
    return Message(title=NOT_AVAILABLE_TITLE, description=f"This action is only available for: {types}.")


TIMEOUT_MESSAGE = Message(
    title="This is taking too long",
    description="The action did not finish in time and was stopped. Please try again.",
)
FAILED_MESSAGE = Message(title="Something went wrong", description="The action failed. Please try again.")
UNAVAILABLE_MESSAGE = Message(title="Temporarily unavailable", description="Please try again in a moment.")
REFUSED_TITLE = "Action refused"
BUSY_TITLE = "Frame.io is busy"


def busy_message(exc: RateLimited) -> Message:
    """The answer of an action whose Frame.io call hit the rate limit (docs/limits.md): nothing was done."""
    seconds = max(1, math.ceil(exc.retry_after))
    return Message(
        title=BUSY_TITLE,
        description=f"Frame.io is handling too many requests right now, so nothing was done. Try again in {seconds} s.",
    )


# A retry waits for the first run, which ends within the time budget; the margin covers the
# first run's own bookkeeping. Still under Frame.io's 5 s with the largest allowed budget.
_WAIT_MARGIN = 0.3


def action_state(state: IngressState) -> ActionState:
    """The process's action state store, built on first use from the settings."""
    if state.action_state is None:
        state.action_state = build_action_state(state.settings, state.redis)
    return state.action_state


async def answer_action(
    state: IngressState, spec: HandlerSpec, event: ActionEvent, body: bytes
) -> tuple[Response, str]:
    """The answer to one verified action request, and the outcome for the request's log line."""
    if not resource_allowed(spec, event):
        return _response(_encode(not_available(spec))), "not available"
    timeout = state.settings.action_timeout
    # Read before the interaction's context fills what the step omits: who the signature vouched for.
    owner = Owner.of(event)
    compute = functools.partial(_run_step, state, spec, event, body)
    try:
        answer, how = await action_state(state).run_step(
            event.interaction_id, step_key(body), compute, wait=timeout + _WAIT_MARGIN, owner=owner, size=len(body)
        )
    except ActionStepRefused as exc:
        # A client's mistake or probe, not a server fault: one quiet line, nothing of the interaction shown.
        logger.info(
            "%s interaction=%s: step refused (%d): %s", event.type, event.interaction_id, exc.status_code, exc.reason
        )
        refused = Message(title=REFUSED_TITLE, description=exc.public_message)
        return _response(_encode(refused)), f"refused ({exc.status_code})"
    except StepStillRunning:
        logger.warning("%s interaction=%s: retry gave up waiting for the first run", event.type, event.interaction_id)
        return _response(_encode(spec.timeout_message or TIMEOUT_MESSAGE)), "still running"
    except ActionStateUnavailable as exc:
        logger.warning("%s interaction=%s: %s", event.type, event.interaction_id, exc)
        return _response(_encode(UNAVAILABLE_MESSAGE)), "state unavailable"
    return _response(answer), "answered" if how == "ran" else f"answered ({how})"


def resource_allowed(spec: HandlerSpec, event: ActionEvent) -> bool:
    """False when the action is limited to some resource types and was run on another. A
    submission that omits its resource passes: the interaction's first call was checked."""
    if not spec.resource_types:
        return True
    return all(r.type in spec.resource_types for r in event.resources)


async def invoke_handler(state: IngressState, spec: HandlerSpec, event: ActionEvent) -> AnyResponse:
    """Run the action's handler through the middleware chain: every gate that may answer instead
    of the handler (e.g. sign-in for `require_user_auth`) belongs here."""
    return await answer_as_user(state.app, spec, event)  # sign-in gate (ingress/oauth.py)


async def _run_step(
    state: IngressState, spec: HandlerSpec, event: ActionEvent, body: bytes, interaction: Interaction
) -> StepResult:
    """The handler under the time budget. On overrun the handler is cancelled (it must not go on
    doing what the user was told did not happen) and the timeout Message is this step's answer."""
    sent_context = context_of(event)
    context = {**interaction.context, **sent_context}
    apply_context(event, context).with_form_history(interaction.history)
    token = bind_hand_off(functools.partial(_enqueue_job, state, event, body, interaction.history, context))
    handler = bind_handler(spec.event_type)  # the label of its throttled Frame.io calls (docs/limits.md)
    try:
        task = asyncio.create_task(invoke_handler(state, spec, event))
    finally:
        reset_handler(handler)
        reset_hand_off(token)
    budget = state.settings.action_timeout
    if not await _finished_within(task, budget):
        task.cancel()
        task.add_done_callback(functools.partial(_log_late, event))
        logger.warning(
            "%s interaction=%s overran its %.1fs budget: handler cancelled", event.type, event.interaction_id, budget
        )
        return StepResult(_encode(spec.timeout_message or TIMEOUT_MESSAGE), record=None, context=sent_context)
    try:
        return StepResult(_encode(task.result()), record=event.data, context=sent_context)
    except RateLimited as exc:
        logger.warning("%s interaction=%s: %s", event.type, event.interaction_id, exc)
        return StepResult(_encode(busy_message(exc)), record=None, context=sent_context)
    except Exception as exc:
        # Exception text may quote what the user typed (int(event.data["pin"])): scrubbed as in the workers.
        answers = [*string_leaves(interaction.history), *string_leaves(event.data)]
        logger.error(
            "%s interaction=%s: action handler failed\n%s",
            event.type,
            event.interaction_id,
            scrubbed_traceback(exc, answers),
        )
        return StepResult(_encode(FAILED_MESSAGE), record=None, context=sent_context)


async def _finished_within(task: asyncio.Task[AnyResponse], budget: float) -> bool:
    """Whether `task` ended within `budget` seconds; it is left running otherwise. One future and
    one timer: asyncio.wait() builds sets, a coroutine and a callback per call on this hot path."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_later(budget, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _log_late(event: ActionEvent, task: asyncio.Task[AnyResponse]) -> None:
    if not task.cancelled() and task.exception() is None:
        logger.warning(
            "%s interaction=%s: handler ignored cancellation; its late answer is dropped",
            event.type,
            event.interaction_id,
        )


async def _enqueue_job(
    state: IngressState,
    event: ActionEvent,
    body: bytes,
    history: list[dict[str, Any]],
    context: dict[str, Any],
    job: str,
) -> None:
    if job not in state.app.action_job_handlers:
        raise ValueError(f"hand_off: no @app.on_action_job({job!r}) is registered")
    key = action_job_key(job, body)
    queue = state.app.action_job_handlers[job].queue
    payload = ActionJob(
        job=job,
        event_type=event.type,
        interaction_id=event.interaction_id,
        user_id=event.user_id,
        body=body.decode("utf-8"),
        form_history=history,
        context=context,
        timestamp=event.timestamp,
        received_at=time.time(),
        idempotency_key=key,
        queue=queue,
    )
    # docs/tenants.md: the job's queue, and its account's shard of it (the first call's context when
    # a submission omits the account).
    target = state.router.queue(queue, event.account_id or str(context.get("account_id") or ""))
    kwargs = payload.model_dump(exclude_none=True)
    fresh = await state.producer.enqueue(HANDLE_ACTION_JOB, kwargs, payload.describe(), key, queue=target, event=event)
    logger.info(
        "%s interaction=%s: job %s %s", event.type, event.interaction_id, job, "enqueued" if fresh else "duplicate"
    )


def _encode(result: AnyResponse) -> bytes:
    if result is None:
        return b""
    if not isinstance(result, Message | Form):
        raise TypeError(f"action handlers return Form, Message or None, not {type(result).__name__}")
    return orjson.dumps(result.to_json())


def _response(answer: bytes) -> Response:
    if not answer:
        return Response(status_code=200)
    return Response(answer, media_type="application/json")
