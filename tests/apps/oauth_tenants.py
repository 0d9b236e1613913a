"""Two tenants on one integration: per-account signing secrets (a `secret_resolver`) and user sign-in.

Handlers record a *hash* of the token they see (tests/apps/oauth.py explains why).
"""

from __future__ import annotations

import secrets

from frameio_kit import ActionEvent, App, Message, OAuthConfig, WebhookEvent
from tests.apps.oauth import PUBLIC_URL, _seen_token, record, resume_after_sign_in
from tests.apps.tenant_secrets import ACTION_SECRETS, WEBHOOK_SECRETS

_UNKNOWN = secrets.token_hex(16)  # an account we do not serve: nothing verifies


class PerAccountSecrets:
    """Each account (tenant) signs with its own secrets, as a multi-tenant integration configures them."""

    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        return WEBHOOK_SECRETS.get(event.account_id, _UNKNOWN)

    async def get_action_secret(self, event: ActionEvent) -> str:
        return ACTION_SECRETS.get(event.account_id, _UNKNOWN)


app = App(
    secret_resolver=PerAccountSecrets(),
    oauth=OAuthConfig(
        client_id="test-client",
        client_secret="test-client-secret-7e41",
        base_url=PUBLIC_URL,
        on_auth_complete=resume_after_sign_in,
    ),
)


@app.on_action("my_app.transcribe", name="Transcribe", description="Transcribe as the user", require_user_auth=True)
async def transcribe(event: ActionEvent) -> Message:
    await record("action", interaction=event.interaction_id, account=event.account_id, token=_seen_token())
    return Message(title="Transcribing", description="Started as you")


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    await record("webhook", resource=event.resource_id, account=event.account_id, token=_seen_token())
