"""Frame.io-shaped request bodies: webhooks of any of the 30 event types and custom-action steps."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

# Frame.io's 30 webhook event types (SDK 4.0.0), grouped as the platform documents them.
WEBHOOK_TYPES: tuple[str, ...] = (
    "file.created",
    "file.ready",
    "file.updated",
    "file.deleted",
    "file.upload.completed",
    "file.versioned",
    "file.copied",
    "folder.created",
    "folder.updated",
    "folder.deleted",
    "folder.copied",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "comment.completed",
    "comment.uncompleted",
    "project.created",
    "project.updated",
    "project.deleted",
    "metadata.value.updated",
    "customfield.created",
    "customfield.updated",
    "customfield.deleted",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "share.created",
    "share.updated",
    "share.deleted",
    "share.viewed",
)

# The resource a webhook of each group is about; metadata values belong to files.
_RESOURCE_TYPES = {
    "file": "file",
    "folder": "folder",
    "comment": "comment",
    "project": "project",
    "metadata": "file",
    "customfield": "customfield",
    "collection": "collection",
    "share": "share",
}


def webhook_payload(
    event_type: str = "file.ready",
    *,
    resource_id: str | None = None,
    resource_type: str | None = None,
    account_id: str | None = None,
    workspace_id: str | None = None,
    project_id: str | None = None,
    user_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A webhook body shaped like Frame.io's documented delivery, for any event type.

    The resource type follows the event's group (`comment.created` is about a comment); ids not
    given are a random resource id and stable fake account, workspace, project and user ids.
    `fields` are merged in at the top level last (e.g. `data={...}`).
    """
    resource_id = resource_id or str(uuid.uuid4())
    resource_type = resource_type or _RESOURCE_TYPES.get(event_type.split(".", 1)[0], "file")
    if project_id is None:
        project_id = resource_id if resource_type == "project" else fake_id("project")
    return {
        "account": {"id": account_id or fake_id("account")},
        "project": {"id": project_id},
        "resource": {"id": resource_id, "type": resource_type},
        "type": event_type,
        "user": {"id": user_id or fake_id("user")},
        "workspace": {"id": workspace_id or fake_id("workspace")},
        **fields,
    }


def action_payload(
    event_type: str,
    *,
    interaction_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    resource_id: str | None = None,
    resource_type: str = "file",
    account_id: str | None = None,
    workspace_id: str | None = None,
    project_id: str | None = None,
    user_id: str | None = None,
    action_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One custom-action step: the first call without `data`, a form submission with it.

    Reuse `interaction_id` for every step of one interaction, as Frame.io does.
    """
    payload: dict[str, Any] = {
        "account_id": account_id or fake_id("account"),
        "action_id": action_id or fake_id("action"),
        "interaction_id": interaction_id or str(uuid.uuid4()),
        "project": {"id": project_id or fake_id("project")},
        "resource": {"id": resource_id or str(uuid.uuid4()), "type": resource_type},
        "type": event_type,
        "user": {"id": user_id or fake_id("user")},
        "workspace": {"id": workspace_id or fake_id("workspace")},
        **fields,
    }
    if data is not None:
        payload["data"] = dict(data)
    return payload


def encode_body(payload: Mapping[str, Any] | bytes) -> bytes:
    """The raw body for `payload`: compact JSON, or the bytes as given (to test odd bodies)."""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def fake_id(kind: str) -> str:
    """A stable UUID per kind, so one run's events look like one account, workspace and user."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"frameio-kit-testing:{kind}"))
