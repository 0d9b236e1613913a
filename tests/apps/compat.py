"""An integration written the v0.0.10 way: blank secrets from `os.getenv`, resolvers that fail.

Handlers record in the test's Redis (TEST_RECORD_URL) so a test can tell that they did not run.
"""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Message, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))
RESOLVER_ERROR_TEXT = "resolver-failure-text-7d3e"


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps(fields))


async def raising_resolver(event: WebhookEvent | ActionEvent) -> str:
    raise RuntimeError(f"{RESOLVER_ERROR_TEXT}: cannot reach the secrets table")


async def blank_resolver(event: WebhookEvent | ActionEvent) -> str:
    return "  "


@app.on_webhook("file.ready", secret=os.getenv("COMPAT_UNSET_SECRET", ""))
async def on_file_ready(event: WebhookEvent) -> None:
    await record("done", resource=event.resource_id)


@app.on_webhook("file.created", secret=raising_resolver)
async def on_file_created(event: WebhookEvent) -> None:
    await record("done", resource=event.resource_id)


@app.on_action("compat.raises", name="Raises", description="resolver raises", secret=raising_resolver)
async def on_raising_action(event: ActionEvent) -> Message:
    await record("action", interaction=event.interaction_id)
    return Message(title="ran")


@app.on_action("compat.blank", name="Blank", description="resolver answers blank", secret=blank_resolver)
async def on_blank_action(event: ActionEvent) -> Message:
    await record("action", interaction=event.interaction_id)
    return Message(title="ran")
