"""Fairness between accounts (tests/test_fairness.py): a 20 ms handler that records, in completion order,
the account of each event it finished (list `test:fair` in the Redis at TEST_RECORD_URL)."""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis

from frameio_kit import App, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


@app.on_webhook("file.ready")
async def on_ready(event: WebhookEvent) -> None:
    await asyncio.sleep(0.02)
    await _record.rpush("test:fair", event.account_id)
