"""An integration for the custom-action tests: wizards, slow steps, hand-off, resource filters.

Handlers record their calls in the test's Redis (TEST_RECORD_URL, db 1), read by the `records` fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, AnyResponse, App, Form, Message, Middleware, NextFunc, TextField, hand_off


class RecordingMiddleware(Middleware):
    """Proves the chain runs around actions (ingress) and action jobs (worker)."""

    async def on_action(self, event: ActionEvent, next: NextFunc) -> AnyResponse:
        await record("middleware", type=event.type, interaction=event.interaction_id)
        return await next(event)


app = App(middleware=[RecordingMiddleware()])
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


def _form(title: str, name: str) -> Form:
    return Form(title=title, fields=[TextField(label=name.title(), name=name)])


@app.on_action("tests.wizard", name="Wizard", description="Three forms, then a summary")
async def wizard(event: ActionEvent) -> Form | Message:
    await record(
        "wizard",
        interaction=event.interaction_id,
        data=event.data,
        history=event.form_history,
        answers=event.answers,
        user=event.user_id,
        resource=event.resource_id,
    )
    if event.data is None:
        return _form("Step 1", "name")
    if "name" in event.data:
        return _form("Step 2", "color")
    if "color" in event.data:
        return _form("Step 3", "size")
    answers = event.answers
    return Message(title="Summary", description=f"{answers['name']}/{answers['color']}/{answers['size']}")


@app.on_action("tests.once", name="Once", description="A unique answer per run, optionally slow")
async def once(event: ActionEvent) -> Message:
    extra = event.model_extra or {}
    await record("once", interaction=event.interaction_id)
    await asyncio.sleep(float(extra.get("test_sleep", 0)))
    return Message(title="Done", description=uuid.uuid4().hex)


@app.on_action(
    "tests.sleepy",
    name="Sleepy",
    description="Overruns the time budget",
    timeout_message=Message(title="Still working", description="Try again in a minute."),
)
async def sleepy(event: ActionEvent) -> Message:
    await record("sleepy", state="started", interaction=event.interaction_id)
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await record("sleepy", state="cancelled", interaction=event.interaction_id)
        raise
    await record("sleepy", state="finished", interaction=event.interaction_id)
    return Message(title="Late")


@app.on_action("tests.export", name="Export", description="Two forms, then the work goes to a worker")
async def export(event: ActionEvent) -> Form | Message:
    if event.data is None:
        return _form("Format", "format")
    if "format" in event.data:
        return _form("Quality", "quality")
    await hand_off(event)
    return Message(title="Started", description="You will be notified")


@app.on_action_job("tests.export")
async def export_job(event: ActionEvent) -> None:
    await record(
        "job", interaction=event.interaction_id, answers=event.answers, history=event.form_history, user=event.user_id
    )


@app.on_action("tests.folder_only", name="Folders", description="Only on folders", resource_type="folder")
async def folder_only(event: ActionEvent) -> Message:
    extra = sorted((event.model_extra or {}).keys())
    await record(
        "folder_only", interaction=event.interaction_id, extra=extra, resources=[r.id for r in event.resources]
    )
    return Message(title="Folder action ran")
