"""An integration for the job-runner and signed-job tests: action jobs that fail, a form whose answer
must never leak, and a webhook. Handlers record their calls in the test's Redis (TEST_RECORD_URL, db 1).
"""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Form, Message, TextField, WebhookEvent, hand_off

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


@app.on_action("tests.doomed", name="Doomed", description="Hands off a job that fails until healed")
async def doomed(event: ActionEvent) -> Message:
    await hand_off(event)
    return Message(title="Started")


@app.on_action_job("tests.doomed", max_retries=1, retry_backoff=0.05)
async def doomed_job(event: ActionEvent) -> None:
    await record("doomed", interaction=event.interaction_id)
    if not await _record.exists("test:heal"):
        raise RuntimeError("export service unavailable")


@app.on_action("tests.secret_form", name="Secret", description="Asks for an API key, then hands off")
async def secret_form(event: ActionEvent) -> Form | Message:
    if event.data is None:
        return Form(title="Key", fields=[TextField(label="API key", name="api_key")])
    await hand_off(event)
    return Message(title="Started")


@app.on_action_job("tests.secret_form", max_retries=2, retry_backoff=0.05)
async def secret_job(event: ActionEvent) -> None:
    attempt = await _record.incr(f"test:secret-attempts:{event.interaction_id}")
    await record("secret", interaction=event.interaction_id, attempt=attempt)
    if attempt == 1:
        key = event.answers["api_key"]
        raise RuntimeError(f"upstream rejected api key {key} (Authorization: Bearer {key})")


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    await record("webhook", resource=event.resource_id, user=event.user_id)
