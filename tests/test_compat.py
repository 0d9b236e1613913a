"""v0.0.10 behaviour seed integrations rely on: blank secrets, decoration-time environment, resolver
failures answered 503, the original's ValueError, the old encryption-key variable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from frameio_kit import ActionEvent, AnyEvent, App, OAuthConfig, WebhookEvent
from shared.app import registry
from shared.settings import Settings
from tests.helpers import WEBHOOK_SECRET, action_payload, post_signed, queue_length, wait_until, webhook_payload

COMPAT_APP = "tests.apps.compat:app"
RESOLVER_ERROR_TEXT = "resolver-failure-text-7d3e"  # what tests/apps/compat.py's resolver raises with
WEBHOOK_WORDING = (
    "Webhook secret must be provided either via 'secret' parameter, "
    "app-level secret_resolver, or WEBHOOK_SECRET environment variable"
)
ACTION_WORDING = (
    "Custom action secret must be provided either via 'secret' parameter, "
    "app-level secret_resolver, or CUSTOM_ACTION_SECRET environment variable"
)
EVENT = WebhookEvent.model_validate(webhook_payload("r"))


async def handler(event: AnyEvent) -> None:
    return None


def resolve(app: App, event_type: str, event: AnyEvent = EVENT) -> str:
    spec = app.lookup(event_type)
    assert spec is not None
    return asyncio.run(app.resolve_secret(spec, event))


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_blank_secret_with_nothing_configured_raises_the_original_value_error(blank: str):
    with pytest.raises(ValueError) as webhook_error:
        App().on_webhook("file.ready", secret=blank)(handler)
    assert str(webhook_error.value) == WEBHOOK_WORDING
    with pytest.raises(ValueError) as action_error:
        App().on_action("a.b", name="n", description="d", secret=blank)(handler)
    assert str(action_error.value) == ACTION_WORDING


def test_blank_environment_secret_counts_as_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "  ")
    with pytest.raises(ValueError, match="WEBHOOK_SECRET environment variable"):
        App().on_webhook("file.ready")(handler)
    assert Settings().webhook_secret is None


def test_blank_secret_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "from-env")
    app = App()
    app.on_webhook("file.ready", secret="")(handler)
    assert resolve(app, "file.ready") == "from-env"
    assert "from-env" not in repr(app.lookup("file.ready"))


def test_blank_secret_falls_back_to_the_app_resolver():
    class Resolver:
        async def get_webhook_secret(self, event: WebhookEvent) -> str:
            return "from-resolver"

        async def get_action_secret(self, event: ActionEvent) -> str:
            return "unused"

    app = App(secret_resolver=Resolver())
    app.on_webhook("file.ready", secret="")(handler)
    assert resolve(app, "file.ready") == "from-resolver"


def test_signing_secrets_are_read_at_decoration_time(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "first")
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", "first-action")
    first = App()
    first.on_webhook("file.ready")(handler)
    first.on_action("a.b", name="n", description="d")(handler)
    monkeypatch.setenv("WEBHOOK_SECRET", "second")
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", "second-action")
    second = App()
    second.on_webhook("file.ready")(handler)
    second.on_action("a.b", name="n", description="d")(handler)
    action = ActionEvent.model_validate(action_payload("i", type="a.b"))
    assert (resolve(first, "file.ready"), resolve(first, "a.b", action)) == ("first", "first-action")
    assert (resolve(second, "file.ready"), resolve(second, "a.b", action)) == ("second", "second-action")


def test_workers_still_register_without_secrets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(registry, "_secrets_required", False)
    app = App()
    app.on_webhook("file.ready", secret="")(handler)
    app.on_action("a.b", name="n", description="d")(handler)
    assert app.lookup("file.ready") is not None
    assert app.lookup("a.b") is not None


def test_empty_resource_type_is_refused_at_decoration():
    # An unknown type is reported by validate_configuration() (tests/test_upstream_answers.py).
    with pytest.raises(ValueError, match="empty"):
        App().on_action("a.b", name="n", description="d", secret="s", resource_type=[])(handler)


def test_old_encryption_key_variable_is_a_fallback(monkeypatch: pytest.MonkeyPatch):
    legacy = Fernet.generate_key().decode()
    monkeypatch.setenv("FRAMEIO_AUTH_ENCRYPTION_KEY", legacy)
    settings = Settings()
    assert settings.encryption_keys is not None
    assert settings.encryption_keys.get_secret_value() == legacy
    App(
        oauth=OAuthConfig(client_id="c", client_secret="s", base_url="https://x.example")
    )  # no start-up error: a key is configured

    current = Fernet.generate_key().decode()
    monkeypatch.setenv("FRAMEIO_KIT_ENCRYPTION_KEYS", current)
    assert Settings().encryption_keys.get_secret_value() == current  # type: ignore[union-attr]
    monkeypatch.setenv("FRAMEIO_KIT_ENCRYPTION_KEYS", "")
    assert Settings().encryption_keys.get_secret_value() == legacy  # type: ignore[union-attr]
    assert legacy not in repr(Settings())


# -- over HTTP, through the real CLI ingress -------------------------------------------------


def ingress_log(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.glob("ingress-*.log"))


def test_blank_secret_argument_never_becomes_the_key(start_ingress, redis_client):
    url = start_ingress(COMPAT_APP)
    assert post_signed(url, webhook_payload("empty-key"), "").status_code == 401
    assert queue_length(redis_client) == 0
    assert post_signed(url, webhook_payload("env-key"), WEBHOOK_SECRET).status_code == 202


def test_resolver_that_raises_is_503_and_the_handler_does_not_run(start_ingress, redis_client, records, tmp_path):
    url = start_ingress(COMPAT_APP)
    action = post_signed(url, action_payload("i-raise", type="compat.raises"), "anything")
    webhook = post_signed(url, webhook_payload("w-raise", event_type="file.created"), "anything")
    for response in (action, webhook):
        assert response.status_code == 503
        assert RESOLVER_ERROR_TEXT not in response.text
        assert response.json() == {"error": "Configuration error."}
    assert records("action") == []
    assert queue_length(redis_client) == 0

    wait_until(lambda: "on_file_created" in ingress_log(tmp_path), what="the resolver failure in the log")
    log = ingress_log(tmp_path)
    assert "tests.apps.compat.on_raising_action raised RuntimeError" in log
    assert RESOLVER_ERROR_TEXT not in log


def test_resolver_that_answers_blank_is_401_not_a_key(start_ingress, records):
    """Blank means "no secret for this account" (issue 21): refused as unsigned, never used as a key."""
    url = start_ingress(COMPAT_APP)
    for key in ("", "  "):
        response = post_signed(url, action_payload(f"i-blank-{len(key)}", type="compat.blank"), key)
        assert response.status_code == 401
    assert records("action") == []
