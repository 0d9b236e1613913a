"""The answers upstream frameio-kit v0.0.10's tests pin, where giving them costs no safety
(issue 25 item 5; the deliberate differences are in docs/decisions.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from frameio_kit import ActionEvent, App, Message, WebhookEvent
from ingress.app import create_app
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from shared.oauth.config import OAuthConfig
from shared.oauth.token_manager import TokenManager
from shared.oauth.token_store import TokenData
from shared.redis_keys import user_token_accounts_key
from shared.settings import Settings
from tests.helpers import RedisServer, action_payload, sign_request, webhook_payload
from tests.test_oauth_store import KEY_A, DictKeyValue, fresh_pair, manager_for, with_manager

SECRET = "upstream-answers-secret"
QUEUE = "frameio-kit"


async def _raising_resolver(event: Any) -> str:
    raise RuntimeError("vault unreachable")


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[TestClient]:
    app = App()

    @app.on_webhook("file.ready", secret=SECRET)
    async def on_file(event: WebhookEvent) -> None:
        return None

    @app.on_webhook("file.created", secret=_raising_resolver)
    async def on_created(event: WebhookEvent) -> None:
        return None

    @app.on_action("tests.folders", name="F", description="d", secret=SECRET, resource_type=["version_stack", "folder"])
    async def on_folders(event: ActionEvent) -> Message:
        return Message(title="ran", description="ran")

    settings = Settings(redis_url=redis_server.url)
    with TestClient(create_app(app, settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _signed_without_timestamp(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body, headers = sign_request(payload, SECRET)
    return body, {k: v for k, v in headers.items() if k != TIMESTAMP_HEADER}


def test_signed_request_without_a_timestamp_header_is_400(client, redis_client: redis.Redis):
    body, headers = _signed_without_timestamp(webhook_payload("no-ts"))
    response = client.post("/", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": f"Missing {TIMESTAMP_HEADER} header"}
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("garbled", ["not-a-number", "12.5", "-17", "1e9", " "])
def test_signed_request_with_a_non_integer_timestamp_is_400(client, redis_client: redis.Redis, garbled: str):
    body, headers = sign_request(webhook_payload("bad-ts"), SECRET)
    response = client.post("/", content=body, headers={**headers, TIMESTAMP_HEADER: garbled})
    assert response.status_code == 400
    assert response.json() == {"error": f"Invalid {TIMESTAMP_HEADER} header format"}
    assert redis_client.llen(QUEUE) == 0


def test_request_without_a_signature_stays_401_whatever_its_timestamp(client, redis_client: redis.Redis):
    body, headers = sign_request(webhook_payload("unsigned"), SECRET)
    unsigned = {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}
    for timestamp_headers in ({}, {TIMESTAMP_HEADER: "garbled"}, {TIMESTAMP_HEADER: unsigned[TIMESTAMP_HEADER]}):
        response = client.post("/", content=body, headers={"content-type": "application/json", **timestamp_headers})
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid signature."}
    assert redis_client.llen(QUEUE) == 0


def test_wrong_signature_and_stale_timestamp_say_invalid_signature(client):
    body, _ = sign_request(webhook_payload("wrong"), SECRET)
    wrong = client.post("/", content=body, headers=sign_request(webhook_payload("wrong"), "other-secret")[1])
    stale = client.post("/", content=body, headers=sign_request(body, SECRET, timestamp=1)[1])
    for response in (wrong, stale):
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid signature."}


def test_resolver_that_raises_says_configuration_error(client, redis_client: redis.Redis):
    body, headers = sign_request(webhook_payload("cfg", event_type="file.created"), SECRET)
    response = client.post("/", content=body, headers=headers)
    assert response.status_code == 503
    assert response.json() == {"error": "Configuration error."}
    assert "vault unreachable" not in response.text
    assert redis_client.llen(QUEUE) == 0


def test_action_on_another_resource_type_names_the_allowed_types(client):
    body, headers = sign_request(action_payload("i-1", type="tests.folders", resource_type="file"), SECRET)
    response = client.post("/", content=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["title"] == "Action Not Available"
    assert answer["description"] == "This action is only available for: folder, version_stack."


async def _handler(event: ActionEvent) -> None:
    return None


def test_invalid_resource_type_is_reported_by_validate_configuration_not_raised():
    app = App()
    app.on_action("a.b", name="n", description="d", secret="s", resource_type=["file", "comment"])(_handler)  # type: ignore[list-item]
    assert "Action 'a.b' has invalid resource type(s): comment" in app.validate_configuration()


def test_valid_resource_types_are_not_reported():
    app = App()
    app.on_action("a.b", name="n", description="d", secret="s", resource_type="file")(_handler)
    assert not [p for p in app.validate_configuration() if "resource type" in p]


def test_default_oauth_scopes_are_in_upstreams_order():
    config = OAuthConfig(client_id="c", client_secret="s", base_url="https://example.test")
    assert config.scopes == ["additional_info.roles", "offline_access", "profile", "email", "openid"]


def test_delete_token_outside_a_handler_signs_the_user_out_of_every_account(ims, redis_server, redis_client):
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> list[TokenData | None]:
        for account in ("acc-A", "acc-B"):
            await m.store_token("user-1", pair, account_id=account)
        await m.store_token("user-2", fresh_pair(ims, "user-2"), account_id="acc-A")
        await m.delete_token(user_id="user-1")
        return [await m.get_token(user, account_id=a) for user, a in (("user-1", "acc-A"), ("user-1", "acc-B"))] + [
            await m.get_token("user-2", account_id="acc-A")
        ]

    gone_a, gone_b, other_user = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert gone_a is None and gone_b is None
    assert other_user is not None
    assert redis_client.exists(user_token_accounts_key("user-1")) == 0
    assert pair["access_token"].encode() not in redis_client.get(user_token_accounts_key("user-2"))


def test_delete_token_with_an_account_leaves_the_users_other_accounts(ims, redis_server, redis_client):
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> tuple[TokenData | None, TokenData | None]:
        for account in ("acc-A", "acc-B"):
            await m.store_token("user-1", pair, account_id=account)
        await m.delete_token(user_id="user-1", account_id="acc-A")
        return await m.get_token("user-1", account_id="acc-A"), await m.get_token("user-1", account_id="acc-B")

    gone, kept = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert gone is None and kept is not None


def test_delete_token_everywhere_reaches_a_py_key_value_store(ims, redis_server, redis_client):
    storage = DictKeyValue()
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> None:
        for account in ("acc-A", "acc-B"):
            await m.store_token("user-1", pair, account_id=account)
        await m.delete_token(user_id="user-1")

    asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A, storage=storage), work))
    assert storage.entries == []
