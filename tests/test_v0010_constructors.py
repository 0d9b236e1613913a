"""frameio-kit 0.0.10 constructors run unchanged: `OAuthConfig` without `base_url`, `App`'s newer keywords,
`App.create_router()` mounted into a user's Starlette app, and `App.close()`."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from frameio_kit import App, OAuthConfig
from frameio_kit.testing import sign_request
from ingress.oauth import sign_login_token
from shared.core.events import WebhookEvent
from tests.helpers import ACTION_SECRET, WEBHOOK_SECRET, action_payload, queued, webhook_payload

KEY = Fernet.generate_key().decode()
QUEUE = "frameio-kit"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_server: Any, redis_client: redis.Redis) -> redis.Redis:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("FRAMEIO_KIT_ENCRYPTION_KEYS", KEY)
    return redis_client


def oauth_app(**oauth: Any) -> App:
    return App(oauth=OAuthConfig(client_id="cid", client_secret="csecret", **oauth))


def serve(web: Any, work: Callable[[httpx.AsyncClient], Awaitable[Any]], base: str) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=base) as client:
            return await work(client)

    return asyncio.run(run())


def sign_in_redirect(app: App, web: Any, url: str) -> str:
    """The `redirect_uri` of the IMS authorize URL that GET {url}/auth/login sends a user to."""

    async def work(client: httpx.AsyncClient) -> str:
        key = app.token_manager.cipher.signing_keys[0]
        token = sign_login_token(key, "user-1", "interaction-1", int(time.time()) + 300, account_id="acc-1")
        try:
            response = await client.get(f"{url}/auth/login", params={"t": token})
        finally:
            await app.close()
        assert response.status_code == 302, response.text
        (redirect,) = parse_qs(urlsplit(response.headers["location"]).query)["redirect_uri"]
        return redirect

    return str(serve(web, work, url))


def test_oauth_config_is_built_from_client_id_and_secret_alone() -> None:
    config = OAuthConfig(client_id="cid", client_secret="csecret")
    assert (config.base_url, config.redirect_url, config.redirect_uri) == (None, None, None)
    assert OAuthConfig(client_id="c", client_secret="s", base_url="https://x.test/").redirect_uri == (
        "https://x.test/auth/callback"
    )


def test_the_sign_in_redirect_uses_the_configured_redirect_url(env: redis.Redis) -> None:
    app = oauth_app(redirect_url="https://cb.example.test/hooks/auth/callback")
    assert sign_in_redirect(app, app.create_router(), "http://anyhost.test") == (
        "https://cb.example.test/hooks/auth/callback"
    )


def test_the_sign_in_redirect_keeps_using_base_url(env: redis.Redis) -> None:
    app = oauth_app(base_url="https://kit.example.test")
    assert sign_in_redirect(app, app.create_router(), "http://anyhost.test") == (
        "https://kit.example.test/auth/callback"
    )


def test_without_base_or_redirect_url_the_callback_comes_from_the_request(env: redis.Redis) -> None:
    app = oauth_app()
    assert sign_in_redirect(app, app.create_router(), "http://myhost.test:8080") == (
        "http://myhost.test:8080/auth/callback"
    )


def test_a_derived_callback_includes_the_mount_prefix(env: redis.Redis) -> None:
    app = oauth_app()
    host = Starlette(routes=[Mount("/frameio", app=app.create_router())])
    assert sign_in_redirect(app, host, "https://site.test/frameio") == "https://site.test/frameio/auth/callback"


def test_app_accepts_the_newer_keywords_and_wires_each_where_it_belongs(env: redis.Redis) -> None:
    store = object()
    app = App(
        token="tok",
        oauth=OAuthConfig(client_id="cid", client_secret="csecret"),
        api_url="https://api.example.test",
        storage=store,
        encryption_key=KEY,
        primary_color="#123456",
        accent_color="#abcdef",
        custom_css="body{}",
        show_powered_by=False,
    )
    assert app.client._client_wrapper.get_base_url() == "https://api.example.test"
    assert app.oauth is not None and app.oauth.storage is store and app.oauth.encryption_key == KEY
    branding = (app.primary_color, app.accent_color, app.custom_css, app.show_powered_by)
    assert branding == ("#123456", "#abcdef", "body{}", False)


def test_oauth_config_storage_and_key_win_over_the_apps(env: redis.Redis) -> None:
    mine, other = object(), Fernet.generate_key().decode()
    config = OAuthConfig(client_id="cid", client_secret="csecret", storage=mine, encryption_key=KEY)
    app = App(oauth=config, storage=object(), encryption_key=other)
    assert app.oauth is not None and app.oauth.storage is mine and app.oauth.encryption_key == KEY


def test_a_router_mounted_in_a_users_starlette_app_queues_a_signed_webhook(env: redis.Redis) -> None:
    app = App()

    @app.on_webhook("file.ready", secret=WEBHOOK_SECRET)
    async def on_ready(event: WebhookEvent) -> None:
        return None

    async def home(_: Any) -> PlainTextResponse:
        return PlainTextResponse("the user's own page")

    host = Starlette(routes=[Route("/", home), Mount("/frameio", app=app.create_router())])
    body, headers = sign_request(webhook_payload("file-mounted"), WEBHOOK_SECRET)

    async def work(client: httpx.AsyncClient) -> tuple[int, int, str]:
        own = await client.get("/")
        response = await client.post("/frameio/", content=body, headers=headers)
        await app.close()
        await app.close()  # twice is fine
        return response.status_code, own.status_code, own.text

    assert serve(host, work, "http://site.test") == (202, 200, "the user's own page")
    [raw] = queued(env, QUEUE)
    message = json.loads(raw)
    assert "file-mounted" in json.dumps(message)


def test_a_sign_in_link_without_base_url_points_at_the_mounted_router(env: redis.Redis) -> None:
    app = oauth_app()

    @app.on_action("my_app.transcribe", "Transcribe", "Transcribe a file", secret=ACTION_SECRET, require_user_auth=True)
    async def transcribe(_: Any) -> None:
        return None

    host = Starlette(routes=[Mount("/frameio", app=app.create_router())])
    body, headers = sign_request(action_payload("interaction-1"), ACTION_SECRET)

    async def work(client: httpx.AsyncClient) -> httpx.Response:
        try:
            return await client.post("/frameio/", content=body, headers=headers)
        finally:
            await app.close()

    response = serve(host, work, "https://site.test")
    assert response.status_code == 200, response.text
    (field,) = response.json()["fields"]
    assert str(field["value"]).startswith("https://site.test/frameio/auth/login?t=")


def test_install_pages_work_without_base_url(env: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEIO_KIT_SESSION_SECRET", secrets.token_urlsafe(48))
    app = App(oauth=OAuthConfig(client_id="cid", client_secret="csecret"), install=True)

    async def work(client: httpx.AsyncClient) -> httpx.Response:
        try:
            return await client.get("/install/login")
        finally:
            await app.close()

    response = serve(app.create_router(), work, "https://site.test")
    assert response.status_code == 302, response.text
    (redirect,) = parse_qs(urlsplit(response.headers["location"]).query)["redirect_uri"]
    assert redirect == "https://site.test/install/callback"
