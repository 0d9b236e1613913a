"""End to end, the sign-in's security properties: tokens bound to their tenant, the key canary,
login links (one pending sign-in each, rate limited, malformed ones refused) and compare-and-delete.

Real ingress and workers (CLI processes), real Redis, real HTTP; only IMS and GET /v4/me are the
local stand-in (tests/ims_standin.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from shared.oauth.token_store import RedisBackend, TokenCipher, TokenData, TokenStore, key_fingerprint
from shared.redis_client import async_client
from shared.redis_keys import key_canary_key, user_token_key
from tests.apps.tenant_secrets import ACTION_SECRETS, TENANT_A, TENANT_B, WEBHOOK_SECRETS
from tests.helpers import ACTION_SECRET, WEBHOOK_SECRET, action_payload, cli_command, free_port, post_signed, wait_until
from tests.helpers import webhook_payload as webhook
from tests.oauth_support import (
    KEY_A,
    OAUTH_APP,
    fingerprint,
    login_link,
    oauth_env,
    on_ingress,
    run_action,
    sign_in,
)

pytestmark = pytest.mark.e2e

TENANTS_APP = "tests.apps.oauth_tenants:app"
KEY_C = Fernet.generate_key().decode()
STARTED = {"title": "Transcribing", "description": "Started as you"}


def tenant_action(url: str, account: str, interaction: str, user: str = "user-1") -> dict[str, Any]:
    payload = action_payload(interaction, account_id=account, user={"id": user})
    response = post_signed(url, payload, ACTION_SECRETS[account])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def logs(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))


def test_a_token_signed_in_under_one_tenant_is_never_handed_to_another_tenants_events(
    ims, start_ingress, start_worker, redis_client, records
):
    env = oauth_env(ims)
    url = start_ingress(TENANTS_APP, extra_env=env)
    worker = start_worker(TENANTS_APP, extra_env=env)
    assert sign_in(url, tenant_action(url, TENANT_A, "int-a0"))[0].status_code == 200
    access = ims.latest_access["user-1"]
    assert redis_client.exists(user_token_key(TENANT_A, "user-1")) == 1

    # Tenant B signs, with its own valid secret, an action naming tenant A's signed-in user.
    answer_b = tenant_action(url, TENANT_B, "int-b1")
    assert login_link(answer_b).startswith("https://kit.example.test/auth/login?t=")  # asked to sign in
    assert tenant_action(url, TENANT_A, "int-a1") == STARTED
    assert [(r["interaction"], r["account"], r["token"]) for r in records("action")] == [
        ("int-a1", TENANT_A, fingerprint(access))
    ]

    # The same for webhooks, run by the worker.
    for resource, account in (("file-b", TENANT_B), ("file-a", TENANT_A)):
        payload = webhook(resource, account={"id": account}, user={"id": "user-1"})
        assert post_signed(url, payload, WEBHOOK_SECRETS[account]).status_code == 202
    forged = webhook("file-x", account={"id": TENANT_A}, user={"id": "user-1"})
    assert post_signed(url, forged, WEBHOOK_SECRETS[TENANT_B]).status_code == 401  # B cannot speak for A
    seen = wait_until(lambda: len(records("webhook")) == 2 and records("webhook"), timeout=20, what="webhooks")
    by_resource = {r["resource"]: r for r in seen}
    assert by_resource["file-b"]["token"] is None
    assert by_resource["file-a"]["token"] == fingerprint(access)
    assert {r["pid"] for r in seen} == {worker.pid}
    assert ims.calls["authorization_code"] == 1


def test_resuming_after_sign_in_skips_a_pending_action_of_another_user(
    ims, start_ingress, redis_client, records, tmp_path
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))
    form = run_action(url, "int-shared", user="user-1")
    # Same interaction, another user: refused (issue 21), and pending actions are keyed per user anyway.
    assert run_action(url, "int-shared", user="user-2")["title"] == "Action refused"

    callback, _ = sign_in(url, form)  # user-1 completes their own link

    assert callback.status_code == 200
    assert [r["user"] for r in records("resumed")] == ["user-1"]  # user-1's own action, never user-2's
    assert "on_auth_complete skipped" not in logs(tmp_path)


def test_a_worker_or_ingress_with_the_wrong_key_refuses_to_start_and_keeps_the_records(
    ims, start_ingress, base_env, redis_client, tmp_path
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims, KEY_A))
    assert sign_in(url, run_action(url, "int-0"))[0].status_code == 200
    sealed = redis_client.get(user_token_key("acc-1", "user-1"))
    assert sealed is not None and Fernet(KEY_A.encode()).decrypt(redis_client.get(key_canary_key()))

    wrong = {
        **base_env,
        **oauth_env(ims, KEY_C),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CUSTOM_ACTION_SECRET": ACTION_SECRET,
    }
    runs = {
        "worker": cli_command("worker", OAUTH_APP, "--concurrency", "1"),
        "ingress": cli_command("ingress", OAUTH_APP, "--port", str(free_port())),
        "celery": [sys.executable, "-m", "celery", "-A", "workers", "worker", "-P", "solo", "-l", "INFO"],
    }
    results = {
        name: subprocess.run(argv, env={**wrong, "FRAMEIO_APP": OAUTH_APP}, capture_output=True, text=True, timeout=60)
        for name, argv in runs.items()
    }
    for name, result in results.items():
        output = result.stdout + result.stderr
        assert result.returncode != 0, (name, output[-2000:])
        assert "FRAMEIO_KIT_ENCRYPTION_KEYS" in output and key_fingerprint(KEY_C) in output, (name, output[-2000:])
        assert KEY_C not in output and KEY_A not in output
    assert results["worker"].returncode == 2 and results["ingress"].returncode == 2

    assert redis_client.get(user_token_key("acc-1", "user-1")) == sealed  # nothing deleted
    assert Fernet(KEY_A.encode()).decrypt(sealed)
    assert run_action(url, "int-1") == STARTED  # the right key still reads it


def test_a_login_link_with_non_ascii_characters_answers_400_without_a_traceback(
    ims, start_ingress, redis_client, tmp_path
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))
    answers = [
        httpx.get(url + "/auth/login?t=%C3%A9t%C3%A9.sig"),
        httpx.get(url + "/auth/login?t=body.%E2%9C%93%E2%9C%93"),
        httpx.get(url + "/auth/login", params={"t": "a" * 10 + "." + "ü" * 43}),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert all("malformed" in a.text for a in answers)
    output = logs(tmp_path)
    assert "Traceback" not in output and "internal error" not in output
    assert ims.calls["authorize"] == 0


def test_a_login_link_starts_one_pending_sign_in_and_its_uses_are_rate_limited(ims, start_ingress, redis_client):
    url = start_ingress(OAUTH_APP, extra_env={**oauth_env(ims), "FRAMEIO_KIT_LOGIN_RATE_LIMIT": "5"})
    link = on_ingress(login_link(run_action(url, "int-link")), url)

    first, second = httpx.get(link), httpx.get(link)
    assert first.status_code == second.status_code == 302
    assert first.headers["location"] == second.headers["location"]  # the same pending sign-in, resumed
    assert len(list(redis_client.scan_iter(match="frameio-kit:oauth:state:*"))) == 1

    authorize = httpx.get(first.headers["location"], follow_redirects=False)
    assert httpx.get(on_ingress(authorize.headers["location"], url)).status_code == 200
    used = httpx.get(link)
    assert used.status_code == 410 and "already used" in used.text
    assert [httpx.get(link).status_code for _ in range(2)] == [410, 410]  # uses 4 and 5 of 5

    limited = httpx.get(link)
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 600
    assert ims.calls["authorize"] == 1 and ims.calls["authorization_code"] == 1


def test_a_record_replaced_while_a_rejected_refresh_runs_survives_and_is_used(
    ims, start_ingress, redis_server, redis_client, records
):
    url = start_ingress(OAUTH_APP, extra_env=oauth_env(ims))
    ims.access_expires_in = 120  # inside the refresh buffer
    assert sign_in(url, run_action(url, "int-0"))[0].status_code == 200
    ims.access_expires_in, ims.reject_refresh, ims.refresh_delay = 86399, True, 1.0
    replacement = ims._issue("user-1")

    answers: list[dict[str, Any]] = []
    running = threading.Thread(target=lambda: answers.append(run_action(url, "int-1")))
    running.start()
    wait_until(lambda: ims.calls["refresh_token"] == 1, timeout=10, what="the refresh to reach IMS")
    asyncio.run(_store(redis_server.url, replacement))  # another process signs the user in meanwhile
    running.join(timeout=20)

    assert answers == [STARTED]  # IMS rejected the old refresh token, but the new record was used...
    assert [r["token"] for r in records("action")] == [fingerprint(replacement["access_token"])]
    stored = redis_client.get(user_token_key("acc-1", "user-1"))
    assert stored is not None and replacement["access_token"].encode() in Fernet(KEY_A.encode()).decrypt(stored)


async def _store(redis_url: str, payload: dict[str, Any]) -> None:
    backend = RedisBackend(async_client(redis_url, "tokens"))
    try:
        await TokenStore(TokenCipher([KEY_A]), backend).save(TokenData.from_ims(payload, "user-1", account_id="acc-1"))
    finally:
        await backend.close()
