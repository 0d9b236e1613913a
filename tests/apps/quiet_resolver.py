"""An integration whose secret resolver knows one account: it answers "" (or None) for any other,
the usual way to say "unknown", and raises for a broken one (tests/test_security_round3_logs.py)."""

from __future__ import annotations

from frameio_kit import ActionEvent, App, WebhookEvent

KNOWN, KNOWN_SECRET = "acc-known", "known-tenant-secret-6a1f"
UNKNOWN, ANSWERS_NONE, BROKEN = "acc-unknown", "acc-none", "acc-broken"


def _secret_for(account_id: str) -> str:
    if account_id == BROKEN:
        raise RuntimeError("the secrets table is unreachable")
    if account_id == ANSWERS_NONE:
        # What resolvers written as `dict.get()` answer, whatever their annotation says.
        return None  # type: ignore[return-value]
    return KNOWN_SECRET if account_id == KNOWN else ""


class AccountSecrets:
    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        return _secret_for(event.account_id)

    async def get_action_secret(self, event: ActionEvent) -> str:
        return _secret_for(event.account_id)


app = App(secret_resolver=AccountSecrets())


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    return None
