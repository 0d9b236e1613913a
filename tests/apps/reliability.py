"""The integration used by the delivery-guarantee, leak, RabbitMQ and soak tests.

Handlers record each start and completion (with the event's idempotency key) in the Redis at
TEST_RECORD_URL, and fail on request: `test_fail_times` (transient), `test_permanent`.
"""

from __future__ import annotations

import asyncio
import json
import os

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Message, WebhookEvent
from shared.errors import PermanentError

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, event: WebhookEvent) -> None:
    entry = {"pid": os.getpid(), "resource": event.resource_id, "type": event.type, "key": event.idempotency_key}
    await _record.rpush(f"test:{kind}", json.dumps(entry))


async def run(event: WebhookEvent) -> None:
    extra = event.model_extra or {}
    await record("started", event)
    if extra.get("test_sleep"):
        await asyncio.sleep(float(extra["test_sleep"]))
    if extra.get("test_permanent"):
        raise PermanentError("planned permanent failure")
    if extra.get("test_fail_times"):
        attempts = await _record.incr(f"test:attempts:{event.resource_id}")
        if attempts <= int(extra["test_fail_times"]):
            raise RuntimeError(f"planned failure {attempts}")
    await record("done", event)


@app.on_webhook(["file.ready", "file.created"])
async def on_file(event: WebhookEvent) -> None:
    await run(event)


@app.on_webhook("comment.created", max_retries=0)
async def on_comment(event: WebhookEvent) -> None:
    await run(event)


@app.on_webhook("file.upload.completed", max_retries=4, retry_backoff=0.05)
async def on_upload(event: WebhookEvent) -> None:
    await run(event)


@app.on_action("my_app.echo", name="Echo", description="Answer with a message")
async def on_echo(event: ActionEvent) -> Message:
    return Message(title="Echo", description=f"resource {event.resource_id}")
