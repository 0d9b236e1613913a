"""An integration installed through /install for the install tests: handlers record what
`get_install_config()` gave them (the sensitive value only as a hash).

TEST_PUBLIC_URL is the ingress's own URL (the browser follows redirects to it);
TEST_EXTRA_ACTION=1 registers one more action, as a new release of the integration would;
TEST_ALLOWED_ACCOUNTS (comma separated, default acc-A,acc-B) is its `allowed_accounts`;
TEST_LOGO_URL (https) its `logo_url`.
"""

from __future__ import annotations

import hashlib
import json
import os

import redis.asyncio as aioredis

from frameio_kit import (
    ActionEvent,
    App,
    InstallField,
    Message,
    OAuthConfig,
    WebhookEvent,
    get_install_config,
)

ALLOWED = os.environ.get("TEST_ALLOWED_ACCOUNTS", "acc-A,acc-B").split(",")

_record = aioredis.from_url(os.environ.get("TEST_RECORD_URL", "redis://127.0.0.1:6379/15"))


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def record(kind: str, **fields: object) -> None:
    await _record.rpush(f"test:{kind}", json.dumps({"pid": os.getpid(), **fields}))


app = App(
    oauth=OAuthConfig(
        client_id="test-client",
        client_secret="test-client-secret-7e41",
        base_url=os.environ.get("TEST_PUBLIC_URL", "http://127.0.0.1:8000"),
    ),
    install=True,
    install_fields=[
        InstallField(name="api_key", label="API key", type="password", required=True),
        InstallField(name="region", label="Region", type="select", options=("eu", "us"), default="eu"),
        InstallField(name="channel", label="Review channel", description="Where summaries are posted, e.g. #reviews"),
    ],
    allowed_accounts=ALLOWED,
    name="Review Bot",
    description="Posts review summaries.",
    logo_url=os.environ.get("TEST_LOGO_URL") or None,
    # Branding the install pages show (tests/test_install_browser.py checks it is applied).
    primary_color="#0b5c4b",
    accent_color="#f2a541",
    custom_css="#powered-by{font-style:italic}",
)


@app.on_webhook(["file.ready", "file.created"])
async def on_file(event: WebhookEvent) -> None:
    config = get_install_config()
    await record(
        "webhook",
        resource=event.resource_id,
        account=event.account_id,
        workspace=event.workspace_id,
        region=config["region"],
        api_key=fingerprint(config["api_key"]),
    )


@app.on_action("review.summarize", name="Summarize", description="Summarize the review")
async def summarize(event: ActionEvent) -> Message:
    config = get_install_config()
    return Message(title="Summary", description=f"region={config['region']} workspace={event.workspace_id}")


if os.environ.get("TEST_EXTRA_ACTION") == "1":

    @app.on_action("review.export", name="Export", description="Export the review")
    async def export(event: ActionEvent) -> Message:
        return Message(title="Exported", description="done")
