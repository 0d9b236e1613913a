"""An integration for the breaker tests (tests/test_breaker.py): `file.ready` fails while the test's Redis
(TEST_RECORD_URL, db 1) holds `test:down`, and is never retried, so each failure is a dead letter;
`comment.created` always works."""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis

from frameio_kit import App, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


@app.on_webhook("file.ready", max_retries=0)
async def on_ready(event: WebhookEvent) -> None:
    await record("run", resource=event.resource_id)
    if await _record.exists("test:down"):
        raise ConnectionError("the dependency is down")
    await record("done", resource=event.resource_id)


@app.on_webhook("comment.created")
async def on_comment(event: WebhookEvent) -> None:
    await record("comment", resource=event.resource_id)
