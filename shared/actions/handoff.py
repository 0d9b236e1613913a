"""`hand_off`: an action handler queues its slow work for the workers and answers at once."""

from __future__ import annotations

from shared.context import current_hand_off
from shared.core.events import ActionEvent


async def hand_off(event: ActionEvent, job: str | None = None) -> None:
    """Queue the follow-up job `job` (default: the action's event type) for the workers.

    Call it from an action handler, then answer the user at once, e.g.
    `Message(title="Started", description="You will be notified")`. The job, registered with
    `@app.on_action_job(job)`, runs in a worker with the middleware chain and webhook-style
    retries; it receives this step's event with `form_history` and `answers` and the user's id,
    never a token. Returns once the broker holds the job; a retried step queues it once.

    Raises:
        RuntimeError: outside an action handler running in the ingress.
        ValueError: no `@app.on_action_job(job)` is registered.
        BrokerUnavailable: the queue did not take the job in time.
    """
    bound = current_hand_off()
    if bound is None:
        raise RuntimeError("hand_off() works only inside an action handler running in the ingress")
    await bound(job or event.type)
