"""An integration with user sign-in for the OAuth tests: handlers record a *hash* of the token they see.

Recording the token itself would put it in Redis in clear text, which the tests check never happens.
"""

from __future__ import annotations

import hashlib
import json
import os

import redis.asyncio as aioredis
from starlette.responses import RedirectResponse

from frameio_kit import ActionEvent, App, AuthCompleteContext, Message, OAuthConfig, WebhookEvent, get_user_token

PUBLIC_URL = "https://kit.example.test"

_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seen_token() -> str | None:
    try:
        return fingerprint(get_user_token())
    except RuntimeError:
        return None


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


async def resume_after_sign_in(event: ActionEvent) -> None:
    await record("resumed", interaction=event.interaction_id, user=event.user_id, token=_seen_token())


app = App(
    oauth=OAuthConfig(
        client_id="test-client",
        client_secret="test-client-secret-7e41",
        base_url=PUBLIC_URL,
        on_auth_complete=resume_after_sign_in,
    )
)


@app.on_action("my_app.transcribe", name="Transcribe", description="Transcribe as the user", require_user_auth=True)
async def transcribe(event: ActionEvent) -> Message:
    await record("action", interaction=event.interaction_id, user=event.user_id, token=_seen_token())
    return Message(title="Transcribing", description="Started as you")


async def publish_after_sign_in(ctx: AuthCompleteContext) -> RedirectResponse:
    """This action's own callback: it runs instead of OAuthConfig's, and its page replaces the default."""
    event = ctx.event
    await record("publish_resumed", interaction=event.interaction_id, user=event.user_id, token=_seen_token())
    return RedirectResponse(f"{PUBLIC_URL}/published/{event.interaction_id}", status_code=303)


@app.on_action(
    "my_app.publish",
    name="Publish",
    description="Publish as the user",
    require_user_auth=True,
    on_auth_complete=publish_after_sign_in,
)
async def publish(event: ActionEvent) -> Message:
    return Message(title="Publishing", description="Started as you")


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    await record("webhook", resource=event.resource_id, user=event.user_id, token=_seen_token())
