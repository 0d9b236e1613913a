"""The integration of the tracing tests: a webhook that fails once then succeeds after calling the
Frame.io API (a stand-in at FRAMEIO_KIT_API_URL), and a form action that hands its answer off to a job.
v0.0.10's OpenTelemetryMiddleware is in the chain, as integrations pass it."""

from __future__ import annotations

import os

import redis.asyncio as aioredis

from frameio_kit import (
    ActionEvent,
    App,
    Client,
    Form,
    Message,
    OpenTelemetryMiddleware,
    TextField,
    WebhookEvent,
    hand_off,
)

API_TOKEN = "tok-traced-7e1b94c0"

app = App(middleware=[OpenTelemetryMiddleware(tracer_name="tests.traced")])
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


@app.on_webhook("file.ready", max_retries=2, retry_backoff=0.05)
async def on_file_ready(event: WebhookEvent) -> None:
    async with Client(token=API_TOKEN) as client:
        await client.users.show()
    if await _record.incr(f"test:attempts:{event.resource_id}") == 1:
        raise RuntimeError(f"planned failure with token {API_TOKEN}")
    await _record.rpush("test:done", event.resource_id)


@app.on_action("tests.export", name="Export", description="Asks for a key, then hands off")
async def export(event: ActionEvent) -> Form | Message:
    if event.data is None:
        return Form(title="Key", fields=[TextField(label="API key", name="api_key")])
    await hand_off(event)
    return Message(title="Started")


@app.on_action_job("tests.export")
async def export_job(event: ActionEvent) -> None:
    await _record.rpush("test:exported", event.interaction_id)
