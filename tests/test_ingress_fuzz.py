"""Property-based tests: random bodies, headers, encodings and sizes against the ingress, in-process
with a real Redis. Never a 5xx; never an enqueue without a valid signature."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from frameio_kit import App
from ingress.app import create_app
from shared.core.events import WebhookEvent
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_headers
from shared.jobs.routing import physical_queues
from shared.settings import Settings
from tests.helpers import JOB_SIGNING_KEY, WEBHOOK_SECRET, RedisServer, queue_length, webhook_payload

QUEUE = "frameio-kit"
MAX_BODY = 8192
REJECTIONS = {400, 401, 413, 422}
FUZZ = settings(
    deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

fuzz_app = App()


@fuzz_app.on_webhook(["file.ready", "comment.created"], secret=WEBHOOK_SECRET)
async def _never_runs_here(event: WebhookEvent) -> None:  # no worker in these tests
    raise AssertionError("handlers do not run in the ingress")


@pytest.fixture(scope="module")
def ingress(redis_server: RedisServer) -> Iterator[tuple[TestClient, redis.Redis]]:
    config = Settings(
        redis_url=redis_server.url,
        webhook_secret=WEBHOOK_SECRET,
        max_body_bytes=MAX_BODY,
        job_signing_keys=JOB_SIGNING_KEY,
    )
    client = redis.Redis.from_url(redis_server.url)
    with TestClient(create_app(fuzz_app, config), raise_server_exceptions=False) as http:
        yield http, client
    client.close()


def _post(http: TestClient, body: bytes, headers: dict[str, Any]) -> int:
    return http.post("/", content=body, headers=headers).status_code


def _queued(client: redis.Redis) -> int:
    return queue_length(client, QUEUE)


header_text = st.one_of(
    st.none(),
    st.text(max_size=64),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=64),
    st.builds(lambda n: "v0=" + "f" * n, st.integers(0, 5000)),
    st.builds(lambda n: str(int(time.time()) + n), st.integers(-600, 600)),
    st.binary(max_size=64),
)
bodies = st.one_of(
    st.binary(max_size=MAX_BODY * 2),
    st.text(max_size=512).map(str.encode),
    st.builds(lambda p: json.dumps(p).encode(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5)),
    st.builds(
        lambda r, t: json.dumps(webhook_payload(r, event_type=t)).encode(),
        st.text(max_size=40),
        st.sampled_from(["file.ready", "comment.created", "unknown.type", ""]),
    ),
)


def _encode(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogatepass")


@settings(FUZZ, max_examples=2000)
@given(
    body=bodies,
    timestamp=header_text,
    signature=header_text,
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]),
)
def test_unsigned_requests_never_5xx_and_never_enqueue(ingress, body, timestamp, signature, content_type):
    http, client = ingress
    client.flushdb()
    headers = {
        k: v
        for k, v in {
            "content-type": content_type.encode(),
            TIMESTAMP_HEADER: _encode(timestamp),
            SIGNATURE_HEADER: _encode(signature),
        }.items()
        if v is not None
    }

    status = _post(http, body, headers)

    assert status in REJECTIONS, status
    assert _queued(client) == 0


@st.composite
def signed_events(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    payload = webhook_payload(
        draw(st.text(min_size=1, max_size=60)), event_type=draw(st.sampled_from(["file.ready", "comment.created"]))
    )
    payload.update(
        draw(
            st.dictionaries(
                st.from_regex(r"x_[a-z]{1,8}", fullmatch=True),
                st.one_of(st.text(max_size=50), st.integers(), st.booleans()),
                max_size=4,
            )
        )
    )
    body = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
    return body, sign_headers(body, WEBHOOK_SECRET, int(time.time()) + draw(st.integers(-60, 60)))


@settings(FUZZ, max_examples=1000)
@given(event=signed_events(), flip=st.integers(min_value=0), what=st.sampled_from(["body", "signature", "timestamp"]))
def test_signed_event_enqueues_once_and_a_tampered_copy_never(ingress, event, flip, what):
    http, client = ingress
    client.flushdb()
    body, headers = event

    assert _post(http, body, headers) == 202
    assert _queued(client) == 1
    assert _post(http, body, headers) == 202  # the same delivery again: acknowledged, not queued
    assert _queued(client) == 1

    tampered_body, tampered = bytearray(body), dict(headers)
    if what == "body":
        tampered_body[flip % len(body)] ^= 0x01
    elif what == "signature":
        sig = tampered[SIGNATURE_HEADER]
        i = 3 + flip % (len(sig) - 3)
        tampered[SIGNATURE_HEADER] = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
    else:
        tampered[TIMESTAMP_HEADER] = str(int(tampered[TIMESTAMP_HEADER]) + 1 + flip % 100)
    client.delete(*physical_queues(QUEUE))

    status = _post(http, bytes(tampered_body), tampered)

    assert status in REJECTIONS, status
    assert _queued(client) == 0


@settings(FUZZ, max_examples=600)
@given(
    signature=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0x80, blacklist_categories=["Cs"]), min_size=1, max_size=200),
        st.builds(
            lambda s: "v0=" + s,
            st.text(alphabet=st.characters(min_codepoint=0x80, blacklist_categories=["Cs"]), min_size=1, max_size=64),
        ),
        st.builds(lambda n, c: "v0=" + c * n, st.integers(1, 200_000), st.sampled_from(["a", "0", "é", "\u2603"])),
        st.just("v0="),
        st.just("v1=" + "0" * 64),
        st.just(" " * 1000),
    )
)
def test_non_ascii_or_absurd_signature_headers_are_401(ingress, signature):
    http, client = ingress
    client.flushdb()
    body = json.dumps(webhook_payload("fuzz-sig")).encode()
    headers = {**sign_headers(body, WEBHOOK_SECRET), "content-type": "application/json"}
    raw = {k: v.encode() for k, v in headers.items()}
    raw[SIGNATURE_HEADER] = signature.encode("utf-8")

    assert _post(http, body, raw) == 401
    assert _queued(client) == 0


@settings(FUZZ, max_examples=300)
@given(size=st.integers(MAX_BODY + 1, MAX_BODY * 8), declared=st.booleans())
def test_oversized_bodies_are_413_even_when_signed(ingress, size, declared):
    http, client = ingress
    client.flushdb()
    body = b"{" + b" " * (size - 2) + b"}"
    headers: dict[str, Any] = dict(sign_headers(body, WEBHOOK_SECRET))
    if declared:
        assert _post(http, body, headers) == 413
    else:
        chunks = iter([body[i : i + 4096] for i in range(0, len(body), 4096)])
        assert http.post("/", content=chunks, headers=headers).status_code == 413
    assert _queued(client) == 0
