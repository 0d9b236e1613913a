"""Pydantic models of Frame.io's webhook and custom-action payloads.

Liberal where the platform is: resource types and event types are open strings, ids are not
validated as UUIDs (Adobe-storage ids carry an `adobe:` prefix), unknown fields are kept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Account(_Model):
    """Represents the account context, used in standard webhook payloads."""

    id: str


class Project(_Model):
    """Represents the project context in which an event occurred."""

    id: str


ResourceType = Literal["file", "folder", "version_stack"]
"""The resource types a custom action can be limited to (`on_action(..., resource_type=...)`)."""


class Resource(_Model):
    """Represents the primary resource that an event pertains to.

    `type` is an open string: files, folders and version stacks, but also comments, projects,
    shares, collections... arrive on webhooks.
    """

    id: str
    type: str


class User(_Model):
    """Represents the user who initiated the event."""

    id: str


class Workspace(_Model):
    """Represents the workspace (formerly Team) in which an event occurred."""

    id: str


class _BaseEvent(_Model):
    """Fields common to webhooks and custom actions.

    `timestamp` is not in Frame.io's body: it is the `X-Frameio-Request-Timestamp` header,
    copied onto the event by the ingress.
    """

    type: str
    resource: Resource | None = None
    project: Project | None = None
    user: User | None = None
    workspace: Workspace | None = None
    timestamp: int = 0

    @property
    def resource_id(self) -> str:
        """The id of the event's primary resource ("" when the payload carries none)."""
        return self.resource.id if self.resource else ""

    @property
    def user_id(self) -> str:
        """The id of the user who caused the event ("" when the payload carries none)."""
        return self.user.id if self.user else ""

    @property
    def project_id(self) -> str:
        """The id of the project ("" for events outside a project)."""
        return self.project.id if self.project else ""

    @property
    def workspace_id(self) -> str:
        """The id of the workspace ("" when the payload carries none)."""
        return self.workspace.id if self.workspace else ""


class WebhookEvent(_BaseEvent):
    """A standard webhook event payload from Frame.io (`@app.on_webhook` handlers get these)."""

    account: Account
    resource: Resource
    user: User
    workspace: Workspace

    @property
    def account_id(self) -> str:
        """The id of the account."""
        return self.account.id

    _idempotency_key: str = PrivateAttr(default="")

    @property
    def idempotency_key(self) -> str:
        """A stable id for this event, the same on every delivery, retry and replay of it.

        Frame.io sends no event id, so it is a SHA-256 of the event type and the raw body. Use it
        to make side effects idempotent (e.g. as an idempotency key for an outside API, or a
        unique key in your database). "" outside a worker.
        """
        return self._idempotency_key

    def with_idempotency_key(self, key: str) -> WebhookEvent:
        """Set the key the worker computed at the ingress (returns self)."""
        self._idempotency_key = key
        return self


class ActionEvent(_BaseEvent):
    """A custom action event payload, including user-submitted form data.

    Form submissions may omit context fields (Frame.io's own example sends only `type`,
    `interaction_id`, `action_id` and `data`), so everything but those is optional.
    `data` is None on the first call and the submitted form values afterwards.
    """

    interaction_id: str
    action_id: str = ""
    account_id: str = ""
    data: dict[str, Any] | None = None

    @property
    def account(self) -> Account:
        """The account as an `Account`, for symmetry with `WebhookEvent.account`."""
        return Account(id=self.account_id)

    _form_history: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    @property
    def form_history(self) -> list[dict[str, Any]]:
        """The `data` of each earlier submitted step of this interaction, oldest first.

        Kept by the ingress, keyed by `interaction_id` (docs/actions.md); [] on the first call
        and on the first submission. Retried steps are not repeated in it.
        """
        return [dict(step) for step in self._form_history]

    @property
    def answers(self) -> dict[str, Any]:
        """Every answer of the interaction so far: the earlier steps merged with this step's
        `data`, a later step winning when two steps use the same field name."""
        merged: dict[str, Any] = {}
        for step in self._form_history:
            merged.update(step)
        merged.update(self.data or {})
        return merged

    @property
    def resources(self) -> list[Resource]:
        """Every resource the action was run on: `resource`, plus each entry of a `resources`
        list when a multi-asset action sends one (a shape Frame.io does not document; entries
        without an `id` and a `type` are skipped)."""
        found = [self.resource] if self.resource is not None else []
        extra = (self.model_extra or {}).get("resources")
        if isinstance(extra, list):
            for item in extra:
                if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("type"), str):
                    found.append(Resource.model_validate(item))
        return found

    def with_form_history(self, history: list[dict[str, Any]]) -> ActionEvent:
        """Attach the earlier steps' answers (the ingress and workers call this; returns self)."""
        self._form_history = [dict(step) for step in history]
        return self


AnyEvent = ActionEvent | WebhookEvent
"""Union type representing any event that can be processed by the app."""
