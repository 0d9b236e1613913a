"""The integration tests/test_containers.py mounts into the containers: handlers record in Redis which
container (hostname) started and finished each event, so the test can count completions per container.

Recording gives up fast (no client-side retries, 3 s timeouts), so a worker cut off from Redis fails its
attempt; a write it gave up on can still land once the partition heals (TCP retransmits it).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from frameio_kit import App, WebhookEvent

app = App()
HOST = socket.gethostname()
_record = aioredis.from_url(
    os.environ.get("TEST_RECORD_URL", "redis://redis:6379/1"),
    socket_timeout=3,
    socket_connect_timeout=3,
    retry=Retry(NoBackoff(), 0),
    retry_on_timeout=False,
)


async def record(kind: str, event: WebhookEvent) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"host": HOST, "resource": event.resource_id}))


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    await record("started", event)
    sleep = (event.model_extra or {}).get("test_sleep")
    if sleep:
        await asyncio.sleep(float(sleep))
    await record("done", event)
