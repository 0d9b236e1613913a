"""The test suite's conventions on top of `frameio_kit.testing`: the repository root, the test
integration's secrets, and payloads with short fixed ids that assertions can name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frameio_kit import testing
from frameio_kit.testing import (
    RedisServer,
    Service,
    cli_command,
    free_port,
    post_signed,
    sign_request,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent

WEBHOOK_SECRET = "test-webhook-secret-5f2a"
ACTION_SECRET = "test-action-secret-9c1d"
JOB_SIGNING_KEY = "test-job-signing-key-0123456789abcdef"

_IDS = {"account_id": "acc-1", "workspace_id": "ws-1", "project_id": "proj-1", "user_id": "user-1"}


def webhook_payload(resource_id: str, event_type: str = "file.ready", **extra: Any) -> dict[str, Any]:
    return testing.webhook_payload(event_type, resource_id=resource_id, resource_type="file", **_IDS, **extra)


def action_payload(
    interaction_id: str, data: dict[str, Any] | None = None, event_type: str = "my_app.transcribe", **extra: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {"resource_id": "file-1", "action_id": "act-1", **_IDS, **extra}
    return testing.action_payload(event_type, interaction_id=interaction_id, data=data, **fields)


__all__ = [
    "ACTION_SECRET",
    "ROOT",
    "WEBHOOK_SECRET",
    "RedisServer",
    "Service",
    "action_payload",
    "cli_command",
    "free_port",
    "post_signed",
    "sign_request",
    "wait_until",
    "webhook_payload",
]
