"""An integration used by the end-to-end tests: handlers record what they did in Redis.

Handlers read the test's Redis from TEST_RECORD_URL (test code, not product code).
"""

from __future__ import annotations

import asyncio
import json
import os

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Form, Message, SelectField, SelectOption, TextField, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


@app.on_webhook(["file.ready", "comment.created"])
async def on_file_ready(event: WebhookEvent) -> None:
    extra = event.model_extra or {}
    await record("started", resource=event.resource_id, type=event.type)
    if extra.get("test_sleep"):
        await asyncio.sleep(float(extra["test_sleep"]))
    if extra.get("test_fail_times"):
        attempts = await _record.incr(f"test:attempts:{event.resource_id}")
        if attempts <= int(extra["test_fail_times"]):
            raise RuntimeError(f"planned failure {attempts}")
    await record("done", resource=event.resource_id, type=event.type)


@app.on_action("my_app.transcribe", name="Transcribe", description="Transcribe a file")
async def on_transcribe(event: ActionEvent) -> Form | Message:
    await record("action", interaction=event.interaction_id, data=event.data)
    if event.data is None:
        return Form(
            title="Transcribe",
            description="Pick a language",
            fields=[
                SelectField(label="Language", name="language", options=[SelectOption(name="English", value="en")]),
                TextField(label="Note", name="note"),
            ],
        )
    return Message(title="Transcribing", description=f"Language: {event.data.get('language')}")
