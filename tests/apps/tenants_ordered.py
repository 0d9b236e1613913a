"""Per-resource ordering (tests/test_ordering.py): one handler, `ordered_by="resource"`, that records each
event it finished (`test:done`, with the payload's `test_n`) in the Redis at TEST_RECORD_URL.

On request it fails its first attempt (`test_fail_once`) or blocks until a Redis flag exists
(`test_block`: the flag's name), to hold its key while the test kills the worker.
"""

from __future__ import annotations

import asyncio
import json
import os

import redis.asyncio as aioredis

from frameio_kit import App, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def _note(kind: str, event: WebhookEvent) -> None:
    extra = event.model_extra or {}
    entry = {"resource": event.resource_id, "n": extra.get("test_n"), "pid": os.getpid()}
    await _record.rpush(f"test:{kind}", json.dumps(entry))


@app.on_webhook(["file.ready", "comment.created"], ordered_by="resource", retry_backoff=10)
async def mirror(event: WebhookEvent) -> None:
    extra = event.model_extra or {}
    await _note("started", event)
    if extra.get("test_fail_once") and await _record.incr(f"test:attempts:{event.resource_id}:{extra['test_n']}") == 1:
        raise RuntimeError("planned failure of the first attempt")
    if extra.get("test_block"):
        while not await _record.exists(str(extra["test_block"])):
            await asyncio.sleep(0.05)
    await _note("done", event)
