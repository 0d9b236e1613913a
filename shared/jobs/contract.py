"""The queue contract between ingress and workers: task names and the job payload.

Task names are stable strings, never derived from module paths, so a refactor cannot orphan
messages already queued.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, Field

from shared.jobs.redaction import string_leaves

HANDLE_WEBHOOK = "frameio_kit.handle_webhook"
HANDLE_ACTION_JOB = "frameio_kit.handle_action_job"
ENQUEUED_AT_HEADER = "frameio_kit_enqueued_at"
"""Message header: when the message was put on the queue (Unix seconds), for the queue-age gauge
and the wait time of each attempt."""


class WebhookJob(BaseModel):
    """What a webhook task carries: the verified body and the ids Flower and logs show.

    Never a secret or token: workers read tokens from the token store.
    """

    task_name: ClassVar[str] = HANDLE_WEBHOOK

    event_type: str
    resource_id: str
    body: str
    timestamp: int
    received_at: float
    idempotency_key: str
    # docs/tenants.md: the handler's own queue (None: FRAMEIO_KIT_QUEUE), for replays; and the hashed
    # ordering key of an `ordered_by=` handler's event. Set only when they apply.
    queue: str | None = None
    order_key: str | None = None

    @classmethod
    def for_delivery(cls, event_type: str, resource_id: str, body: bytes, timestamp: int) -> WebhookJob:
        """The job for one verified delivery of `body` (tests and bench build theirs alike)."""
        return cls(**cls.delivery_kwargs(event_type, resource_id, body, timestamp))

    @staticmethod
    def delivery_kwargs(event_type: str, resource_id: str, body: bytes, timestamp: int) -> dict[str, Any]:
        """`for_delivery(...).model_dump()`, built directly: the ingress's hot path queues these
        fields as they are (the worker validates them), and a model round trip costs more than
        the rest of building the message."""
        return {
            "event_type": event_type,
            "resource_id": resource_id,
            "body": body.decode("utf-8"),
            "timestamp": timestamp,
            "received_at": time.time(),
            "idempotency_key": idempotency_key(event_type, body),
        }

    def describe(self) -> str:
        """The short form shown in Flower and logs (`kwargsrepr`)."""
        return describe_webhook(self.event_type, self.resource_id)

    def private_values(self) -> list[str]:
        """What exception text must not quote: a webhook carries Frame.io's ids only."""
        return []

    @property
    def handler_key(self) -> str:
        """What the handler is registered under (`on_webhook`)."""
        return self.event_type

    @property
    def ids(self) -> str:
        """The ids a log line or dead-letter listing carries."""
        return f"{self.event_type} resource={self.resource_id}"


def describe_webhook(event_type: str, resource_id: str) -> str:
    """A webhook job's `kwargsrepr`: its ids, never its body."""
    return f"{{'event_type': {event_type!r}, 'resource_id': {resource_id!r}}}"


def idempotency_key(event_type: str, body: bytes) -> str:
    """Stable id for one delivery: Frame.io sends no event id, so the event type plus a hash of
    the raw body stands in for one. Retried deliveries of the same event share it."""
    return hashlib.sha256(event_type.encode("utf-8") + b"\n" + body).hexdigest()


class ActionJob(BaseModel):
    """Follow-up work an action handler handed to the workers (`hand_off`).

    Carries the verified action body, the answers of the interaction's earlier steps, the
    context of its first call (for submissions that omit it) and the user's id; never a token:
    a worker that needs one reads it from the token store.
    """

    task_name: ClassVar[str] = HANDLE_ACTION_JOB

    job: str
    event_type: str
    interaction_id: str
    user_id: str
    body: str
    form_history: list[dict[str, Any]]
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: int
    received_at: float
    idempotency_key: str
    queue: str | None = None  # the `on_action_job(queue=...)`, for replays (docs/tenants.md)

    def describe(self) -> str:
        """The short form shown in Flower and logs (`kwargsrepr`): ids only, no form answers."""
        return f"{{'job': {self.job!r}, 'interaction_id': {self.interaction_id!r}}}"

    def private_values(self) -> list[str]:
        """What exception text must not quote: the user's answers (this step's and earlier ones)."""
        try:
            data = orjson.loads(self.body).get("data")
        except (orjson.JSONDecodeError, AttributeError):
            data = None
        return [*string_leaves(self.form_history), *string_leaves(self.context), *string_leaves(data)]

    @property
    def handler_key(self) -> str:
        """What the handler is registered under (`on_action_job`)."""
        return self.job

    @property
    def ids(self) -> str:
        """The ids a log line or dead-letter listing carries."""
        return f"job {self.job} interaction={self.interaction_id}"


def action_job_key(job: str, body: bytes) -> str:
    """De-duplication key of a hand-off: one job per (job name, action step body)."""
    return hashlib.sha256(b"action-job\n" + job.encode("utf-8") + b"\n" + body).hexdigest()


AnyJob = WebhookJob | ActionJob
JOB_MODELS: dict[str, type[WebhookJob] | type[ActionJob]] = {HANDLE_WEBHOOK: WebhookJob, HANDLE_ACTION_JOB: ActionJob}
"""Each task name's job model: a dead letter is replayed to the task it came from."""
