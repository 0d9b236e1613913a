"""An integration with 12 custom actions (and one webhook), installed through /install against a Frame.io
stand-in that allows 10 action creates per window (tests/test_rate_limits.py).

TEST_PUBLIC_URL is the ingress's own URL, as for tests/apps/install.py.
"""

from __future__ import annotations

import os

from frameio_kit import ActionEvent, App, InstallField, Message, OAuthConfig, WebhookEvent

ACTIONS = 12

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
    ],
    allowed_accounts=["acc-A", "acc-B"],
    name="Many Actions",
    description="Twelve actions, more than Frame.io lets an admin create in a minute.",
)


@app.on_webhook("file.ready")
async def on_file(event: WebhookEvent) -> None:
    return None


def _action(number: int) -> None:
    @app.on_action(f"many.action{number:02d}", name=f"Action {number}", description=f"Action number {number}")
    async def handler(event: ActionEvent) -> Message:
        return Message(title=f"Action {number}", description="done")


for _number in range(1, ACTIONS + 1):
    _action(_number)
