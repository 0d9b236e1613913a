"""What the event history keeps of one acknowledged webhook or action job, and the summary an
`@app.on_dead_letter` hook receives: ids, type, times, status and each attempt's error class, never a
body, a form answer, a token, a secret or an exception's text (which could quote any of them)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel, Field

from shared.core.events import AnyEvent

Status = Literal["queued", "running", "retrying", "deferred", "done", "dead", "paused"]
STATUSES: tuple[str, ...] = get_args(Status)
FINAL: frozenset[str] = frozenset({"done", "dead"})
"""Statuses of events that will not run again by themselves: the only ones a replay re-runs."""
Kind = Literal["webhook", "action_job"]


class EventIds(BaseModel):
    """The ids of an event, read from its body: who and what it is about."""

    account_id: str = ""
    workspace_id: str = ""
    project_id: str = ""
    resource_id: str = ""
    user_id: str = ""

    @classmethod
    def of_event(cls, event: AnyEvent) -> EventIds:
        """Ids of a validated event (a webhook, or an action step with its first call's context)."""
        return cls(
            account_id=event.account_id[:256],
            workspace_id=event.workspace_id[:256],
            project_id=event.project_id[:256],
            resource_id=event.resource_id[:256],
            user_id=event.user_id[:256],
        )

    @classmethod
    def from_body(cls, body: str | bytes) -> EventIds:
        """Ids of a Frame.io body (webhook or action); "" for any it lacks or that is not a string."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return cls()
        return cls.from_mapping(data) if isinstance(data, dict) else cls()

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> EventIds:
        """Ids of a parsed body, or of an interaction's stored first-call context."""
        account = _nested_id(data, "account") or _text(data.get("account_id"))
        return cls(
            account_id=account,
            workspace_id=_nested_id(data, "workspace"),
            project_id=_nested_id(data, "project"),
            resource_id=_nested_id(data, "resource"),
            user_id=_nested_id(data, "user"),
        )

    def as_tuple(self) -> tuple[str, str, str, str, str]:
        return self.account_id, self.workspace_id, self.project_id, self.resource_id, self.user_id

    def or_else(self, other: EventIds) -> EventIds:
        """These ids, each empty one filled from `other` (an action step that omits its context)."""
        return EventIds(**{name: getattr(self, name) or getattr(other, name) for name in type(self).model_fields})


def _text(value: Any) -> str:
    return value[:256] if isinstance(value, str) else ""


def _nested_id(data: dict[str, Any], name: str) -> str:
    part = data.get(name)
    return _text(part.get("id")) if isinstance(part, dict) else ""


class Attempt(BaseModel):
    """One run of the handler for the event. `number` is the run's attempt (1 = first try; a replay or a
    resume starts again at 1); `error` is the exception's class name only."""

    number: int
    task_id: str
    started_at: float
    duration_ms: float | None = None
    status: Status
    error: str | None = None


class EventRecord(BaseModel):
    """One acknowledged event as the history keeps it (`frameio-kit events show` prints this)."""

    id: str = Field(description="the idempotency key of a webhook, the job key of an action job")
    kind: Kind
    type: str
    handler: str = Field(description="the handler's key: the event type, or the action job's name")
    account_id: str = ""
    workspace_id: str = ""
    project_id: str = ""
    resource_id: str = ""
    user_id: str = ""
    received_at: float
    queue: str = ""
    trace_id: str | None = None
    status: Status
    reason: str | None = Field(None, description="why it was dead-lettered (exhausted, permanent, no_handler)")
    replays: int = 0
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def short_id(self) -> str:
        """The first 16 hex digits: what `list` shows and the dead-letter store uses as its id."""
        return self.id[:16]

    @property
    def last_error(self) -> str | None:
        return next((a.error for a in reversed(self.attempts) if a.error), None)

    @classmethod
    def from_hash(cls, event_id: str, fields: dict[str, str]) -> EventRecord | None:
        """Read a stored record (shared/events/history.py's layout); None when it does not parse."""
        try:
            meta = orjson.loads(fields.get("m", ""))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(meta, dict):
            return None
        attempts = []
        for name, raw in fields.items():
            if name.startswith("a:"):
                try:
                    attempts.append(Attempt.model_validate_json(raw))
                except ValueError:
                    continue
        attempts.sort(key=lambda a: (a.started_at, a.number))
        status = fields.get("s", "queued")
        try:
            return cls(
                id=event_id,
                kind=meta.get("kind", "webhook"),
                type=meta.get("type", ""),
                handler=meta.get("handler", ""),
                account_id=meta.get("account", ""),
                workspace_id=meta.get("workspace", ""),
                project_id=meta.get("project", ""),
                resource_id=meta.get("resource", ""),
                user_id=meta.get("user", ""),
                received_at=meta.get("received", 0.0),
                queue=meta.get("queue", ""),
                trace_id=meta.get("trace"),
                status=status if status in STATUSES else "queued",
                reason=fields.get("why"),
                replays=int(fields.get("r", "0") or 0),
                attempts=attempts,
            )
        except ValueError:
            return None


def meta_json(
    *,
    kind: Kind,
    event_type: str,
    handler: str,
    ids: tuple[str, str, str, str, str],
    received_at: float,
    queue: str,
    trace_id: str | None,
) -> bytes:
    """The static part of a record, written once by the ingress. `ids`: account, workspace, project,
    resource, user (a plain tuple: this runs for every webhook the ingress acknowledges)."""
    meta: dict[str, Any] = {
        "kind": kind,
        "type": event_type,
        "handler": handler,
        "account": ids[0][:256],
        "workspace": ids[1][:256],
        "project": ids[2][:256],
        "resource": ids[3][:256],
        "user": ids[4][:256],
        "received": received_at,
        "queue": queue,
    }
    if trace_id:
        meta["trace"] = trace_id
    return orjson.dumps(meta)


class DeadLetterSummary(BaseModel):
    """What an `@app.on_dead_letter` hook receives: enough to alert and to find the dead letter
    (`frameio-kit dead-letters show ID`), never the body, a form answer, a token or an error's text.

    A job the workers refused (reason `unsigned`, `expired`, `malformed`) has only its task and ids of
    its own: `type` and `handler` are "-".
    """

    id: str = Field(description="the dead letter's id (dead-letters show/replay ID)")
    event_id: str = Field("", description="the event's id in the history (events show ID)")
    task: str
    type: str
    handler: str
    reason: str
    attempts: int
    error_class: str | None = None
    account_id: str = ""
    workspace_id: str = ""
    project_id: str = ""
    resource_id: str = ""
    user_id: str = ""
    received_at: float | None = None
    dead_lettered_at: float
