"""The two integrations the install-secret bench compares: the same no-op webhook handler, its
secret from WEBHOOK_SECRET (`static_app`) or from an install record (`install_app`)."""

from __future__ import annotations

from frameio_kit import App, OAuthConfig, WebhookEvent

static_app = App()
install_app = App(
    oauth=OAuthConfig(client_id="bench", client_secret="bench-secret", base_url="http://127.0.0.1"),  # noqa: S106
    install=True,
    name="Bench",
)


@static_app.on_webhook("file.ready")
@install_app.on_webhook("file.ready")
async def noop(event: WebhookEvent) -> None:
    return None
