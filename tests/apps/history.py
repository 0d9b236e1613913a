"""An integration for the event-history tests (tests/test_event_history.py, tests/test_events_cli.py):
webhooks that fail on request (until healed), a retried one, and a signed-in action whose Form answers
are handed off to an action job. Handlers record their runs in the test's Redis (TEST_RECORD_URL, db 1);
tokens only as a fingerprint."""

from __future__ import annotations

import hashlib
import json
import os

import redis.asyncio as aioredis

from frameio_kit import (
    ActionEvent,
    App,
    Form,
    Message,
    OAuthConfig,
    TextField,
    WebhookEvent,
    get_user_token,
    hand_off,
)

PUBLIC_URL = "https://kit.example.test"

app = App(oauth=OAuthConfig(client_id="test-client", client_secret="test-client-secret-7e41", base_url=PUBLIC_URL))
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


@app.on_webhook(["file.ready", "file.created", "comment.created"], max_retries=0)
async def on_event(event: WebhookEvent) -> None:
    """Fails while `test:heal` is unset for events sent with `test_fail`; the error quotes the body."""
    await record("run", resource=event.resource_id, type=event.type, account=event.account_id)
    if (event.model_extra or {}).get("test_fail") and not await _record.exists("test:heal"):
        raise RuntimeError(f"planned failure of {event.resource_id}: {event.model_extra}")
    await record("done", resource=event.resource_id, type=event.type, account=event.account_id)


class UpstreamTimeout(Exception):
    """A failure class of the test's own, to find in the attempt history."""


@app.on_webhook("file.upload.completed", max_retries=3, retry_backoff=0.05)
async def on_upload(event: WebhookEvent) -> None:
    """Fails twice (two different classes), then succeeds."""
    attempt = await _record.incr(f"test:attempts:{event.resource_id}")
    await record("upload", resource=event.resource_id, attempt=attempt)
    if attempt == 1:
        raise UpstreamTimeout(f"no answer for {event.resource_id}")
    if attempt == 2:
        raise ConnectionError("connection reset")


@app.on_action("my_app.export", name="Export", description="Export with an API key", require_user_auth=True)
async def export(event: ActionEvent) -> Form | Message:
    if event.data is None:
        return Form(
            title="Export",
            fields=[TextField(label="API key", name="api_key"), TextField(label="Note", name="note")],
        )
    await hand_off(event)
    return Message(title="Exporting")


@app.on_action_job("my_app.export", max_retries=2, retry_backoff=0.05)
async def export_job(event: ActionEvent) -> None:
    """Fails once quoting the user's answer (the history must keep only the class), then succeeds."""
    token = hashlib.sha256(get_user_token().encode()).hexdigest()
    attempt = await _record.incr(f"test:export-attempts:{event.interaction_id}")
    await record("export", interaction=event.interaction_id, attempt=attempt, token=token)
    if attempt == 1:
        raise RuntimeError(f"upstream refused key {event.answers['api_key']} for {event.answers['note']}")
