"""End to end: Adobe sign-in over real HTTP with a real ingress, real workers, real Redis and a stand-in IMS."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from ingress.oauth import sign_login_token
from shared.oauth.token_store import TokenCipher
from shared.redis_keys import user_token_key
from tests.helpers import (
    ACTION_SECRET,
    ROOT,
    WEBHOOK_SECRET,
    Service,
    cli_command,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)
from tests.oauth_support import (
    KEY_A,
    KEY_B,
    OAUTH_APP,
    PUBLIC_URL,
    fingerprint,
    login_link,
    oauth_env,
    on_ingress,
    run_action,
    sign_in,
)

pytestmark = pytest.mark.e2e


def every_redis_byte(port: int) -> bytes:
    """Every key and value of every database, concatenated."""
    chunks: list[bytes] = []
    for db in range(16):
        client = redis.Redis(port=port, db=db)
        for key in client.scan_iter(count=1000):
            chunks.append(key)
            kind = client.type(key)
            if kind == b"string":
                chunks.append(client.get(key) or b"")
            elif kind == b"list":
                chunks.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    chunks += [field, value]
            elif kind == b"set":
                chunks.extend(client.smembers(key))
            elif kind == b"zset":
                chunks.extend(client.zrange(key, 0, -1))
            elif kind == b"stream":
                for _, entry in client.xrange(key):
                    for field, value in entry.items():
                        chunks += [field, value]
            else:
                raise AssertionError(f"unexpected Redis type {kind!r} for {key!r}")
        client.close()
    return b"\n".join(chunks)


def token_keys(redis_client: redis.Redis) -> list[bytes]:
    return list(redis_client.scan_iter(match="frameio-kit:oauth:token:*"))


def test_sign_in_end_to_end_then_ingress_and_worker_handlers_act_as_the_user(
    ims, start_ingress, start_worker, redis_client, redis_server, records, tmp_path
):
    env = oauth_env(ims)
    url = start_ingress(OAUTH_APP, extra_env=env)
    worker = start_worker(OAUTH_APP, extra_env=env)

    form = run_action(url, "int-first")
    assert records("action") == []  # the handler does not run before sign-in
    callback, _ = sign_in(url, form)
    assert callback.status_code == 200 and "Signed in" in callback.text
    access = ims.latest_access["user-1"]
    assert ims.calls["authorization_code"] == 1 and ims.calls["me"] == 1

    resumed = wait_until(lambda: records("resumed"), timeout=10, what="on_auth_complete")
    assert resumed == [
        {"pid": resumed[0]["pid"], "interaction": "int-first", "user": "user-1", "token": fingerprint(access)}
    ]

    assert run_action(url, "int-second") == {"title": "Transcribing", "description": "Started as you"}
    assert [(r["interaction"], r["token"]) for r in records("action")] == [("int-second", fingerprint(access))]

    assert post_signed(url, webhook_payload("file-1"), WEBHOOK_SECRET).status_code == 202
    assert post_signed(url, webhook_payload("file-2", user={"id": "user-unknown"}), WEBHOOK_SECRET).status_code == 202
    seen = wait_until(lambda: len(records("webhook")) == 2 and records("webhook"), timeout=20, what="webhooks")
    by_resource = {r["resource"]: r for r in seen}
    assert by_resource["file-1"]["token"] == fingerprint(access)
    assert by_resource["file-1"]["pid"] == worker.pid
    assert by_resource["file-2"]["token"] is None  # not signed in: the handler runs, get_user_token() raises

    everything = every_redis_byte(redis_server.port)
    assert user_token_key("acc-1", "user-1").encode() in everything  # the scan does see the record...
    leaked = [t for t in ims.issued if t.encode() in everything]
    assert leaked == [], "a token is stored in clear text"  # ...but never a token in it
    logs = "".join(p.read_text(errors="replace") for p in Path(tmp_path).glob("*.log"))
    assert "signed in user user-1" in logs
    assert [t for t in ims.issued if t in logs] == []


def test_an_actions_own_on_auth_complete_replaces_the_signed_in_page_with_its_response(
    ims, start_ingress, redis_client, records
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))

    form = run_action(url, "int-publish", event_type="my_app.publish")
    callback, _ = sign_in(url, form)

    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == f"{PUBLIC_URL}/published/int-publish"
    access = ims.latest_access["user-1"]
    resumed = records("publish_resumed")
    assert [(r["interaction"], r["user"], r["token"]) for r in resumed] == [
        ("int-publish", "user-1", fingerprint(access))
    ]
    assert records("resumed") == []  # OAuthConfig's callback is for actions without their own
    assert run_action(url, "int-publish-2", event_type="my_app.publish") == {
        "title": "Publishing",
        "description": "Started as you",
    }


def test_twenty_concurrent_actions_near_expiry_refresh_exactly_once(ims, start_ingress, redis_client, records):
    env = oauth_env(ims)
    first, second = start_ingress(OAUTH_APP, extra_env=env), start_ingress(OAUTH_APP, extra_env=env)
    ims.access_expires_in = 120  # inside the 300 s refresh buffer from the start
    callback, _ = sign_in(first, run_action(first, "int-0"))
    assert callback.status_code == 200
    old = ims.latest_access["user-1"]
    ims.access_expires_in, ims.refresh_delay = 86399, 0.5

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: run_action((first, second)[i % 2], f"int-c{i}"), range(20)))

    assert answers == [{"title": "Transcribing", "description": "Started as you"}] * 20
    assert ims.calls["refresh_token"] == 1
    new = ims.latest_access["user-1"]
    assert new != old
    actions = records("action")
    assert len(actions) == 20
    assert {r["token"] for r in actions} == {fingerprint(new)}
    assert len({r["pid"] for r in actions}) == 2  # both ingress processes took part


def test_rejected_refresh_answers_the_sign_in_form_and_drops_the_record(ims, start_ingress, redis_client, records):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))
    ims.access_expires_in = 120
    assert sign_in(url, run_action(url, "int-0"))[0].status_code == 200
    assert token_keys(redis_client) == [user_token_key("acc-1", "user-1").encode()]
    ims.reject_refresh = True

    answer = run_action(url, "int-1")

    assert login_link(answer).startswith(PUBLIC_URL + "/auth/login?t=")
    assert ims.calls["refresh_token"] == 1
    assert token_keys(redis_client) == []
    assert records("action") == []


def test_forged_expired_replayed_and_mismatched_sign_ins_are_refused_and_store_nothing(
    ims, start_ingress, redis_client
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))
    link = on_ingress(login_link(run_action(url, "int-6")), url)
    token = parse_qs(urlsplit(link).query)["t"][0]
    body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims["u"] == "user-1" and claims["i"] == "int-6" and claims["a"] == "acc-1"

    forged_body = base64.urlsafe_b64encode(json.dumps({**claims, "u": "user-2"}).encode()).rstrip(b"=").decode()
    login = url + "/auth/login?t="
    refused = {
        "forged user": httpx.get(login + f"{forged_body}.{signature}"),
        "foreign key": httpx.get(
            login + sign_login_token(b"k" * 32, "user-2", "int-6", int(time.time()) + 600, account_id="acc-1")
        ),
        "expired": httpx.get(
            login
            + sign_login_token(
                TokenCipher([KEY_A]).signing_keys[0], "user-1", "int-6", int(time.time()) - 1, account_id="acc-1"
            )
        ),
        "garbage": httpx.get(login + "garbage"),
        "no state": httpx.get(url + "/auth/callback?code=abc"),
        "unknown state": httpx.get(url + "/auth/callback?code=abc&state=never-issued"),
        "idp error": httpx.get(url + "/auth/callback", params={"error": "<script>alert(1)</script>"}),
    }
    assert {k: r.status_code for k, r in refused.items()} == {
        "forged user": 403,
        "foreign key": 403,
        "expired": 410,
        "garbage": 400,
        "no state": 400,
        "unknown state": 400,
        "idp error": 400,
    }
    assert "<script>" not in refused["idp error"].text and "&lt;script&gt;" in refused["idp error"].text
    assert ims.calls["authorize"] == 0

    ims.sign_in_as = "user-2"  # a different Adobe account signs in from user-1's link
    mismatch, _ = sign_in(url, run_action(url, "int-7"))
    assert mismatch.status_code == 403 and "different Frame.io user" in mismatch.text
    assert token_keys(redis_client) == []

    ims.sign_in_as = "user-1"
    ok, callback_url = sign_in(url, run_action(url, "int-8"))
    assert ok.status_code == 200
    redis_client.delete(user_token_key("acc-1", "user-1"))
    replayed = httpx.get(callback_url)
    assert replayed.status_code == 400 and "already used" in replayed.text
    assert token_keys(redis_client) == []
    assert ims.calls["authorization_code"] == 2  # the mismatch and the success; the replay never reached IMS


def test_users_stay_signed_in_across_restarts_and_a_new_first_key(
    ims, base_env, start_worker, redis_client, records, tmp_path
):
    before = _ingress(base_env, tmp_path, oauth_env(ims, KEY_A))
    try:
        worker = start_worker(OAUTH_APP, extra_env=oauth_env(ims, KEY_A))
        assert sign_in(before.url, run_action(before.url, "int-0"))[0].status_code == 200
    finally:
        before.stop()
    access = ims.latest_access["user-1"]
    worker.stop()

    rotated = oauth_env(ims, f"{KEY_B},{KEY_A}")  # new key first: encrypts; the old one still decrypts
    after = _ingress(base_env, tmp_path, rotated)
    new_worker = start_worker(OAUTH_APP, extra_env=rotated)
    try:
        assert run_action(after.url, "int-1") == {"title": "Transcribing", "description": "Started as you"}
        assert post_signed(after.url, webhook_payload("file-r"), WEBHOOK_SECRET).status_code == 202
        seen = wait_until(lambda: records("webhook"), timeout=20, what="the webhook after restart")
    finally:
        after.stop()
    assert [r["token"] for r in records("action")] == [fingerprint(access)]
    assert seen[0]["token"] == fingerprint(access) and seen[0]["pid"] == new_worker.pid
    assert ims.calls["authorization_code"] == 1 and ims.calls["refresh_token"] == 0


def test_oauth_without_an_encryption_key_fails_at_start_up(base_env, ims):
    env = {**base_env, "CUSTOM_ACTION_SECRET": ACTION_SECRET, "FRAMEIO_KIT_IMS_URL": ims.url}
    result = subprocess.run(
        [*cli_command("ingress", OAUTH_APP, "--port", str(free_port()))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FRAMEIO_KIT_ENCRYPTION_KEYS" in result.stderr


class _Ingress:
    def __init__(self, svc: Service, url: str) -> None:
        self.svc, self.url = svc, url

    def stop(self) -> None:
        self.svc.stop()


def _ingress(base_env: dict[str, str], tmp_path: Path, extra: dict[str, str]) -> _Ingress:
    """An ingress this test can stop and start again (the start_ingress fixture only stops at teardown)."""
    port = free_port()
    env = {**base_env, "WEBHOOK_SECRET": WEBHOOK_SECRET, "CUSTOM_ACTION_SECRET": ACTION_SECRET, **extra}
    svc = Service("ingress", cli_command("ingress", OAUTH_APP, "--port", str(port)), env, tmp_path, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    svc.wait_for_http(url + "/healthz")
    return _Ingress(svc, url)
