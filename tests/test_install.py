"""Install pieces in process: declarations, the diff, sealed records and their tenant check, cache
invalidation across processes' resolvers, validate_configuration, get_request, a prefix mount."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from frameio_kit import (
    ActionEvent,
    App,
    ConfigurationError,
    InstallField,
    Message,
    OAuthConfig,
    WebhookEvent,
    get_install_config,
    get_request,
)
from frameio_kit.testing import RedisServer, action_payload, sign_request, webhook_payload
from shared import redis_keys
from shared.install.models import ActionManifestEntry, HandlerManifest, Installation, WebhookRecord, compute_diff
from shared.install.resolver import InstallSecretResolver
from shared.install.store import InstallationStore
from shared.oauth.token_store import TokenCipher
from shared.redis_client import async_client
from shared.settings import get_settings
from tests.helpers import ACTION_SECRET, WEBHOOK_SECRET

KEY = Fernet.generate_key().decode()


def oauth(base_url: str = "https://kit.example.test") -> OAuthConfig:
    return OAuthConfig(client_id="c", client_secret="s", base_url=base_url, encryption_key=KEY)


def record(account: str, workspace: str, secret: str, config: dict[str, str] | None = None) -> Installation:
    now = datetime.now(UTC)
    return Installation(
        account_id=account,
        workspace_id=workspace,
        installed_at=now,
        updated_at=now,
        webhook=WebhookRecord(webhook_id="h", secret=SecretStr(secret), events=["file.ready"], url="https://x/"),
        config=config,
    )


@pytest.fixture
def install_env(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("FRAMEIO_KIT_SESSION_SECRET", "unit-session-secret-0123456789abcdef")
    get_settings.cache_clear()


def test_install_fields_are_checked_at_construction(install_env: None) -> None:
    with pytest.raises(ConfigurationError, match="Duplicate"):
        App(oauth=oauth(), install=True, install_fields=[InstallField("a", "A"), InstallField("a", "A")])
    with pytest.raises(ConfigurationError, match="Reserved"):
        App(oauth=oauth(), install=True, install_fields=[InstallField("account_id", "A")])
    with pytest.raises(ConfigurationError, match="needs oauth"):
        App(install=True)
    assert InstallField("k", "K", type="password").is_sensitive


def test_install_outside_dev_mode_needs_a_session_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMEIO_KIT_SESSION_SECRET", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="FRAMEIO_KIT_SESSION_SECRET"):
        App(oauth=oauth(), install=True)


def test_the_diff_names_what_an_update_creates_changes_and_deletes() -> None:
    existing = record("a", "w", "s")
    existing.actions = []
    manifest = HandlerManifest(
        webhook_events=["file.ready", "comment.created"],
        actions=[ActionManifestEntry(event_type="x.y", name="Y", description="d")],
    )
    diff = compute_diff(manifest, existing, "https://x/")
    assert diff.webhook_events_added == ["comment.created"] and not diff.webhook_events_removed
    assert [a.event_type for a in diff.actions_added] == ["x.y"] and not diff.url_changed
    assert compute_diff(manifest, existing, "https://elsewhere/").url_changed


def test_a_record_copied_under_another_tenants_key_is_refused(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def scenario() -> Installation | None:
        store = InstallationStore(async_client(redis_server.url, "tokens"), TokenCipher([KEY]))
        await store.save(record("acc-A", "ws-1", "secret-a"))
        sealed = redis_client.get(redis_keys.installation_key("acc-A", "ws-1"))
        assert sealed is not None and b"secret-a" not in sealed
        redis_client.set(redis_keys.installation_key("acc-B", "ws-1"), sealed)
        found = await store.get("acc-B", "ws-1")
        await store.close()
        return found

    assert asyncio.run(scenario()) is None


def test_a_change_in_one_process_drops_the_cached_record_in_another(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    event = WebhookEvent.model_validate(webhook_payload("file.ready", account_id="acc-A", workspace_id="ws-1"))

    async def scenario() -> tuple[tuple[str, ...], tuple[str, ...]]:
        writer = InstallationStore(async_client(redis_server.url, "tokens"), TokenCipher([KEY]))
        reader_store = InstallationStore(async_client(redis_server.url, "tokens"), TokenCipher([KEY]))
        resolver = InstallSecretResolver(lambda: reader_store, ttl=3600)  # only an announcement can refresh it
        before = await resolver.secrets_for(event)
        await asyncio.sleep(0.2)  # the listener subscribes
        await writer.save(record("acc-A", "ws-1", "fresh-secret"))
        deadline = asyncio.get_running_loop().time() + 5
        after: tuple[str, ...] = ()
        while asyncio.get_running_loop().time() < deadline and not after:
            after = await resolver.secrets_for(event)
            await asyncio.sleep(0.02)
        await resolver.close()
        await writer.close()
        await reader_store.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == () and after == ("fresh-secret",)


def test_validate_configuration_lists_the_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv("FRAMEIO_KIT_JOB_SIGNING_KEYS")
    get_settings.cache_clear()
    app = App(oauth=oauth())

    async def done(context: object) -> None:
        return None

    @app.on_action("a.b", name="B", description="d", secret="s", on_auth_complete=done)
    async def b(event: ActionEvent) -> None:
        return None

    problems = app.validate_configuration()
    assert "Action 'a.b' has on_auth_complete but require_user_auth is False" in problems
    assert "FRAMEIO_KIT_JOB_SIGNING_KEYS is not set" in problems
    assert app.action_handlers["a.b"].on_auth_complete is done


def test_get_request_is_the_action_requests_and_get_install_config_raises_without_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", ACTION_SECRET)
    app = App()

    @app.on_action("my_app.who", name="Who", description="d")
    async def who(event: ActionEvent) -> Message:
        try:
            get_install_config()
            configured = "yes"
        except RuntimeError:
            configured = "no"
        return Message(title=get_request().headers["x-probe"], description=configured)

    with pytest.raises(RuntimeError):
        get_request()
    body, headers = sign_request(action_payload("my_app.who", interaction_id="i-1"), ACTION_SECRET)
    with TestClient(app) as client:
        answer = client.post("/", content=body, headers={**headers, "x-probe": "probe-value"})
    assert answer.status_code == 200
    assert answer.json() == {"title": "probe-value", "description": "no"}


def test_mounted_under_a_prefix_the_install_urls_carry_the_prefix(install_env: None) -> None:
    app = App(oauth=oauth("https://kit.example.test"), install=True, name="Prefixed")

    @app.on_webhook("file.ready")
    async def ready(event: WebhookEvent) -> None:
        return None

    web = Starlette(routes=[Mount("/frameio", app=app)])
    with TestClient(web, base_url="https://kit.example.test") as client:
        landing = client.get("/frameio/install")
        assert landing.status_code == 200
        assert "href='https://kit.example.test/frameio/install/login'" in landing.text
        login = client.get("/frameio/install/login", follow_redirects=False)
    assert login.status_code == 302
    query = parse_qs(urlsplit(login.headers["location"]).query)
    assert query["redirect_uri"] == ["https://kit.example.test/frameio/install/callback"]
    cookie = login.headers["set-cookie"]
    assert "Path=/frameio/install" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" in cookie


def test_mounted_under_a_prefix_the_user_sign_in_urls_carry_the_prefix(install_env: None) -> None:
    """`require_user_auth` behind a mount: the sign-in link and Adobe's redirect URI include the prefix."""
    app = App(oauth=oauth("https://kit.example.test"))

    @app.on_action("my_app.needs_user", name="N", description="d", secret=ACTION_SECRET, require_user_auth=True)
    async def needs_user(event: ActionEvent) -> Message:
        return Message(title="ok", description="signed in")

    web = Starlette(routes=[Mount("/frameio", app=app)])
    with TestClient(web, base_url="https://kit.example.test") as client:
        body, headers = sign_request(
            action_payload("my_app.needs_user", interaction_id="i-prefix", user_id="u-1", account_id="a-1"),
            ACTION_SECRET,
        )
        form = client.post("/frameio/", content=body, headers=headers).json()
        link = next(f["value"] for f in form["fields"] if f.get("type") == "link")
        assert link.startswith("https://kit.example.test/frameio/auth/login?t=")
        login = client.get(urlsplit(link).path + "?" + urlsplit(link).query, follow_redirects=False)
    assert login.status_code == 302, login.text
    query = parse_qs(urlsplit(login.headers["location"]).query)
    assert query["redirect_uri"] == ["https://kit.example.test/frameio/auth/callback"]
