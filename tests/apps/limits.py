"""An integration for the tests of Frame.io's limits (docs/limits.md): handlers that call the Frame.io
stand-in through `app.client`, one that hangs, one that is always rate limited, and an action.

Records go to TEST_RECORD_URL (test code, not product code). The stand-in is FRAMEIO_KIT_API_URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Message, RateLimited, WebhookEvent

TOKEN = "limits-test-token-" + "7" * 24
app = App(token=TOKEN)
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))

# INCR on enter, DECR on exit, and the highest value seen: a handler running twice at once shows as 2.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), "at": time.time(), **fields}))


@app.on_webhook("file.ready")
async def show_file(event: WebhookEvent) -> None:
    """One rate-limited call per event (the stand-in limits GET /v4/accounts/{a}/files/{id})."""
    file = await app.client.files.show(event.account_id, event.resource_id)
    await record("done", resource=event.resource_id, account=event.account_id, name=file.data.name)


@app.on_webhook("test.hang", timeout=2, max_retries=1, retry_backoff=0.2)
async def hang(event: WebhookEvent) -> None:
    await _record.eval(_ENTER, 2, "test:hang:running", "test:hang:max")
    await record("hang", resource=event.resource_id)
    try:
        await asyncio.sleep(3600)
    finally:
        await _record.decr("test:hang:running")


@app.on_webhook("test.limited", max_retries=0)
async def always_limited(event: WebhookEvent) -> None:
    await record("limited", resource=event.resource_id)
    raise RateLimited(0.3, endpoint="GET /v4/accounts/{id}/files/{id}")


@app.on_action("tests.limits.show", name="Show", description="Show the file's name")
async def show_action(event: ActionEvent) -> Message:
    file = await app.client.files.show(event.account_id, event.resource_id)
    return Message(title="File", description=str(file.data.name))
