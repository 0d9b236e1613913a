"""Multi-step actions on an integration serving several tenants, each signing with its own secret
(a `secret_resolver`), for tests/test_security_round3_actions.py.

Handlers record every call in the test's Redis (TEST_RECORD_URL, db 1), read by the `records` fixture.
"""

from __future__ import annotations

import json
import os
import secrets

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Form, Message, TextField, WebhookEvent
from tests.apps.tenant_secrets import ACTION_SECRETS, TENANT_A, TENANT_B

TENANT_C = "acc-C"
SECRETS = {**ACTION_SECRETS, TENANT_C: "tenant-c-action-secret-70d3"}
_UNKNOWN = secrets.token_hex(16)  # an account we do not serve: nothing verifies

__all__ = ["SECRETS", "TENANT_A", "TENANT_B", "TENANT_C", "app"]


class PerAccountSecrets:
    """Each account signs its actions with its own secret; webhooks are not used here."""

    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        return _UNKNOWN

    async def get_action_secret(self, event: ActionEvent) -> str:
        return SECRETS.get(event.account_id, _UNKNOWN)


app = App(secret_resolver=PerAccountSecrets())
_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


@app.on_action("tests.notes", name="Notes", description="A form again after each submission, until 'done'")
async def notes(event: ActionEvent) -> Form | Message:
    await record(
        "notes",
        interaction=event.interaction_id,
        account=event.account_id,
        user=event.user_id,
        data=event.data,
        history=event.form_history,
    )
    if event.data is not None and "done" in event.data:
        return Message(title="Saved", description=",".join(f"{k}={v}" for k, v in sorted(event.answers.items())))
    return Form(title="Note", fields=[TextField(label="Note", name="note")])


@app.on_action("tests.pin", name="PIN", description="Parses the PIN the user typed")
async def pin(event: ActionEvent) -> Form | Message:
    if event.data is None:
        return Form(title="PIN", fields=[TextField(label="PIN", name="pin")])
    number = int(event.data["pin"])  # a typed secret that is no number: ValueError quoting it
    return Message(title="PIN accepted", description=str(number % 10))
