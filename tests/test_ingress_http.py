"""The ingress over HTTP, in-process with real Redis: what is rejected, and that nothing is enqueued."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

from frameio_kit import ActionEvent, App, Form, TextField, WebhookEvent
from ingress.app import create_app
from shared.core.signature import SIGNATURE_HEADER
from shared.settings import Settings
from tests.helpers import RedisServer, action_payload, queue_length, sign_request, webhook_payload

SECRET = "in-process-secret"
ACTION_SECRET = "in-process-action-secret"
QUEUE = "frameio-kit"


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def client(redis_server: RedisServer, redis_client: redis.Redis, ran: list[str]) -> Iterator[TestClient]:
    app = App()

    @app.on_webhook("file.ready", secret=SECRET)
    async def on_file(event: WebhookEvent) -> None:
        ran.append(event.resource_id)

    @app.on_action("my_app.transcribe", name="T", description="d", secret=ACTION_SECRET)
    async def on_action(event: ActionEvent) -> Form:
        ran.append(event.interaction_id)
        return Form(title="t", fields=[TextField(label="l", name="n")])

    settings = Settings(redis_url=redis_server.url, max_body_bytes=4096)
    with TestClient(create_app(app, settings), raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: bytes, headers: dict[str, str]):
    return client.post("/", content=body, headers=headers)


def queued(redis_client: redis.Redis) -> int:
    return queue_length(redis_client, QUEUE)


def test_signed_webhook_is_enqueued(client, redis_client, ran):
    response = post(client, *sign_request(webhook_payload("ok-1"), SECRET))
    assert response.status_code == 202
    assert queued(redis_client) == 1
    assert ran == []


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b, h: (b.replace(b"ok-2", b"ok-3"), h), id="tampered-body"),
        pytest.param(lambda b, h: sign_request(b, "wrong-secret"), id="wrong-secret"),
        pytest.param(lambda b, h: sign_request(b, SECRET, timestamp=int(time.time()) - 301), id="timestamp-301s-old"),
        pytest.param(lambda b, h: sign_request(b, SECRET, timestamp=int(time.time()) + 301), id="timestamp-301s-ahead"),
        pytest.param(lambda b, h: (b, {k: v for k, v in h.items() if k != SIGNATURE_HEADER}), id="no-signature"),
        pytest.param(lambda b, h: (b, {"content-type": "application/json"}), id="no-headers"),
    ],
)
def test_unverified_webhook_is_401_and_never_enqueued(client, redis_client, ran, mutate):
    body, headers = sign_request(webhook_payload("ok-2"), SECRET)
    response = post(client, *mutate(body, headers))
    assert response.status_code == 401
    assert queued(redis_client) == 0
    assert "file.ready" not in response.text and "Traceback" not in response.text


def test_unverified_action_never_runs_its_handler(client, ran):
    body, _ = sign_request(action_payload("i-1"), ACTION_SECRET)
    response = post(client, *sign_request(body, "wrong"))
    assert response.status_code == 401
    assert ran == []


def test_non_ascii_signature_header_is_401(client, redis_client):
    body, headers = sign_request(webhook_payload("u"), SECRET)
    headers[SIGNATURE_HEADER] = "v0=" + "é" * 64
    response = client.post("/", content=body, headers={k: v.encode("latin-1") for k, v in headers.items()})
    assert response.status_code == 401
    assert queued(redis_client) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b'"text"', 400), (b"\xff\xfe", 400), (b"", 400)],
)
def test_malformed_bodies_are_400(client, redis_client, body, status):
    response = post(client, *sign_request(body, SECRET))
    assert response.status_code == status
    assert "error" in response.json()
    assert queued(redis_client) == 0


def test_schema_invalid_signed_body_is_422_with_field_names_only(client, redis_client):
    payload = webhook_payload("x")
    del payload["resource"]
    response = post(client, *sign_request(payload, SECRET))
    assert response.status_code == 422
    assert "resource" in response.json()["error"]
    assert queued(redis_client) == 0


def test_payload_without_type_is_422(client):
    assert post(client, *sign_request({"resource": {}}, SECRET)).status_code == 422


def test_oversized_body_is_413(client, redis_client):
    payload = webhook_payload("big", padding="x" * 5000)
    assert post(client, *sign_request(payload, SECRET)).status_code == 413
    assert queued(redis_client) == 0


def test_unhandled_event_type_signed_with_no_known_secret_is_401(client):
    assert post(client, *sign_request(webhook_payload("x", event_type="folder.created"), SECRET)).status_code == 401


def test_action_answers_its_form_json(client, ran):
    response = post(client, *sign_request(action_payload("i-2"), ACTION_SECRET))
    assert response.status_code == 200
    assert response.json() == {"title": "t", "fields": [{"label": "l", "name": "n", "type": "text"}]}
    assert ran == ["i-2"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_get_on_root_is_405_not_500(client):
    assert client.get("/").status_code == 405


def test_response_bodies_never_carry_exception_text(client):
    for body in (b"{", json.dumps(webhook_payload("q")).encode()):
        response = post(client, *sign_request(body, SECRET))
        assert "Traceback" not in response.text
        assert "Error(" not in response.text
