"""An integration for the `@app.on_dead_letter` tests (tests/test_dead_letter_hooks.py): a handler that
always fails, a hook that records each summary in the test's Redis (TEST_RECORD_URL, db 1) and one that
raises."""

from __future__ import annotations

import os

import redis.asyncio as aioredis

from frameio_kit import App, DeadLetterSummary, PermanentError, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


@app.on_webhook("file.ready", max_retries=1, retry_backoff=0.05)
async def on_ready(event: WebhookEvent) -> None:
    if (event.model_extra or {}).get("test_permanent"):
        raise PermanentError(f"refused {event.resource_id}")
    raise TimeoutError("upstream slow")


@app.on_dead_letter
async def broken_alert(summary: DeadLetterSummary) -> None:
    """Registered first and always raises: the other hook still runs, the dead letter stays."""
    raise ValueError(f"alerting backend down while reporting {summary.id}")


@app.on_dead_letter
async def alert(summary: DeadLetterSummary) -> None:
    await _record.rpush("test:summaries", summary.model_dump_json())
