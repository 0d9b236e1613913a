"""The test suite's conventions on top of `frameio_kit.testing`: the repository root, the test
integration's secrets, and payloads with short fixed ids that assertions can name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

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
from shared.jobs import routing

ROOT = Path(__file__).resolve().parent.parent

WEBHOOK_SECRET = "test-webhook-secret-5f2a"
ACTION_SECRET = "test-action-secret-9c1d"
JOB_SIGNING_KEY = "test-job-signing-key-0123456789abcdef"

_IDS = {"account_id": "acc-1", "workspace_id": "ws-1", "project_id": "proj-1", "user_id": "user-1"}

QUEUE = "frameio-kit"


def account_queue(account_id: str = "acc-1", queue: str = QUEUE) -> str:
    """The Redis list an ingress with default settings (FRAMEIO_KIT_FAIRNESS=account) queues this
    account's jobs on: one of the queue's shards (docs/tenants.md)."""
    return routing.shard_names(queue)[routing.shard_of(account_id)]


def queue_length(client: redis.Redis, queue: str = QUEUE) -> int:
    """Messages waiting in `queue` and all its shards."""
    return sum(int(client.llen(name)) for name in routing.physical_queues(queue))


def queued(client: redis.Redis, queue: str = QUEUE) -> list[bytes]:
    """The messages waiting in `queue` and all its shards."""
    return [m for name in routing.physical_queues(queue) for m in client.lrange(name, 0, -1)]


def webhook_payload(resource_id: str, event_type: str = "file.ready", **extra: Any) -> dict[str, Any]:
    return testing.webhook_payload(event_type, resource_id=resource_id, resource_type="file", **_IDS, **extra)


def action_payload(
    interaction_id: str, data: dict[str, Any] | None = None, event_type: str = "my_app.transcribe", **extra: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {"resource_id": "file-1", "action_id": "act-1", **_IDS, **extra}
    return testing.action_payload(event_type, interaction_id=interaction_id, data=data, **fields)


__all__ = [
    "ACTION_SECRET",
    "QUEUE",
    "ROOT",
    "WEBHOOK_SECRET",
    "RedisServer",
    "Service",
    "account_queue",
    "action_payload",
    "cli_command",
    "free_port",
    "post_signed",
    "queue_length",
    "queued",
    "sign_request",
    "wait_until",
    "webhook_payload",
]
