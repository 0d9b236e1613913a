"""A test integration whose custom action takes 2 s: for requests in flight during an ingress shutdown."""

from __future__ import annotations

import asyncio

from frameio_kit import ActionEvent, App, Message
from tests.apps.basic import record

app = App()


@app.on_action("my_app.transcribe", name="Slow", description="Answers after 2 s")
async def slow(event: ActionEvent) -> Message:
    await record("action", interaction=event.interaction_id)
    await asyncio.sleep(2)
    return Message(title="Slow but done", description="finished after SIGTERM")
