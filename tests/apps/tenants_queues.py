"""Per-handler queues (tests/test_queues.py): a handler on queue `slow`, one on `fast`, one on the default
queue; each records which handler ran in which worker process (list `test:ran` at TEST_RECORD_URL)."""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis

from frameio_kit import App, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def _ran(handler: str, event: WebhookEvent) -> None:
    await _record.rpush("test:ran", json.dumps({"handler": handler, "resource": event.resource_id, "pid": os.getpid()}))


@app.on_webhook("file.created", queue="slow")
async def transcode(event: WebhookEvent) -> None:
    await _ran("slow", event)


@app.on_webhook("file.ready", queue="fast")
async def notify(event: WebhookEvent) -> None:
    await _ran("fast", event)


@app.on_webhook("comment.created")
async def comment(event: WebhookEvent) -> None:
    await _ran("default", event)
