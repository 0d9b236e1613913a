"""Issue 21, the install pages, as attacks over real HTTP against a real ingress (and worker), real
Redis and the IMS + Frame.io stand-ins: a plain member rewriting an install (point 2), sign-in
starts filling Redis (6), the session cookie's Secure flag (12), an account taken off
`allowed_accounts` (14)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from shared.redis_keys import installation_key
from tests.frameio_standin import FrameioStandIn
from tests.helpers import Service, wait_until
from tests.ims_standin import ImsServer
from tests.install_support import ADMIN, INSTALL_APP, MEMBER, Admin, Ingress, action, install_env, post, webhook

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(
    api: tuple[ImsServer, FrameioStandIn],
    ingress: Ingress,
    start_worker: Callable[..., Service],
    base_env: dict[str, str],
) -> Service:
    env = install_env(base_env, api[0].standin.url, ingress.url)
    return start_worker(INSTALL_APP, extra_env={k: v for k, v in env.items() if k not in base_env}, concurrency=1)


def fingerprint(value: str) -> str:
    """How tests/apps/install.py records a sensitive value (importing it would build its App here)."""
    return hashlib.sha256(value.encode()).hexdigest()


def _secret(standin: FrameioStandIn, kind: str, account: str, workspace: str) -> tuple[str, str]:
    (found,) = standin.in_workspace(kind, account, workspace)
    return found["id"], standin.secrets[found["id"]]


def _signed_in_as(api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, user: str) -> Admin:
    api[0].standin.sign_in_as = user
    browser = Admin(ingress.url)
    browser._remember_csrf(browser.sign_in())  # the accounts page carries the sign-out form's CSRF token
    api[0].standin.sign_in_as = ADMIN
    return browser


# -- 2. only an account admin or owner changes an install ------------------------------------------


def test_a_plain_member_cannot_install_update_rotate_or_uninstall_and_the_handler_keeps_the_admins_value(
    api: tuple[ImsServer, FrameioStandIn],
    ingress: Ingress,
    worker: Service,
    redis_client: redis.Redis,
    records: Callable[[str], list[Any]],
) -> None:
    standin = api[1]
    admin = _signed_in_as(api, ingress, ADMIN)
    assert "Installed." in admin.install("acc-A", "ws-1", api_key="admin-key").text
    assert "Installed." in admin.install("acc-B", "ws-9").text  # an owner may install too
    sealed = redis_client.get(installation_key("acc-A", "ws-1"))
    calls = standin.calls.copy()

    member = _signed_in_as(api, ingress, MEMBER)
    assert member.csrf, "a signed-in member still gets the session's CSRF token (sign-out form)"
    attacker_key = {"field.api_key": "attacker-key", "field.region": "us"}
    assert member.post("execute", "acc-A", "ws-1", op="update", **attacker_key).status_code == 403
    assert member.post("execute", "acc-A", "ws-2", op="install", **attacker_key).status_code == 403
    assert member.post("rotate", "acc-A", "ws-1").status_code == 403
    assert member.post("uninstall", "acc-A", "ws-1", confirm="yes").status_code == 403
    # Non-admins see no status page at all: neither the settings nor the workspace list.
    home = member.http.get(f"{ingress.url}/install")
    assert "No account you may install into." in home.text and "Account acc-A" not in home.text
    assert member.status("acc-A", "ws-1").status_code == 403
    assert member.http.get(f"{ingress.url}/install/workspaces", params={"account_id": "acc-A"}).status_code == 403

    assert standin.calls == calls, "refused before any Frame.io call"
    assert redis_client.get(installation_key("acc-A", "ws-1")) == sealed, "the record was not rewritten"
    assert redis_client.exists(installation_key("acc-A", "ws-2")) == 0
    _, secret = _secret(standin, "webhook", "acc-A", "ws-1")
    assert post(ingress.url, webhook("acc-A", "ws-1", resource="after-attack"), secret) == 202
    (seen,) = wait_until(lambda: records("webhook"), timeout=30, what="the webhook handler to run")
    assert (seen["resource"], seen["api_key"], seen["region"]) == ("after-attack", fingerprint("admin-key"), "eu")


# -- 6. starting a sign-in stores nothing; a callback is single-use -----------------------------------


def test_many_sign_in_starts_store_nothing_and_a_replayed_callback_is_refused(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, redis_client: redis.Redis
) -> None:
    ims = api[0].standin
    before = set(redis_client.keys("*"))
    with httpx.Client(timeout=20) as flood:
        for _ in range(300):
            assert flood.get(f"{ingress.url}/install/login").status_code == 302
    assert set(redis_client.keys("*")) == before, "GET /install/login wrote to Redis"

    browser = httpx.Client(timeout=20)
    start = browser.get(f"{ingress.url}/install/login")
    state_cookie = browser.cookies["frameio_kit_install_state"]
    assert len(state_cookie) < 1024
    back = browser.get(start.headers["location"])  # IMS approves and sends the browser back
    callback = back.headers["location"]
    assert parse_qs(urlsplit(callback).query)["state"]
    signed_in = browser.get(callback, follow_redirects=True)
    assert signed_in.status_code == 200 and "Account acc-A" in signed_in.text
    assert ims.calls["authorization_code"] == 1

    replay = httpx.get(callback, cookies={"frameio_kit_install_state": state_cookie}, timeout=20)
    assert replay.status_code == 400 and "already used" in replay.text
    assert "frameio_kit_install=" not in replay.headers.get("set-cookie", "")
    assert ims.calls["authorization_code"] == 1, "a replay is refused before Adobe is asked again"

    other = httpx.Client(timeout=20)  # a state cookie from one sign-in does not vouch for another state
    other.get(f"{ingress.url}/install/login")
    assert other.get(callback).status_code == 400


# -- 12. Secure follows an https base URL ---------------------------------------------------------------


def test_an_https_base_url_marks_both_cookies_secure_on_a_plain_http_request(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    public = "https://kit.example.test"
    ingress.start(TEST_PUBLIC_URL=public)
    start = httpx.get(f"{ingress.url}/install/login", timeout=20)  # plain http, no X-Forwarded-Proto
    assert start.status_code == 302
    state_cookie = start.headers["set-cookie"]
    assert state_cookie.startswith("frameio_kit_install_state=") and "Secure" in state_cookie
    back = httpx.get(start.headers["location"], timeout=20)
    query = urlsplit(back.headers["location"]).query
    assert back.headers["location"].startswith(f"{public}/install/callback?")
    value = state_cookie.split(";", 1)[0].split("=", 1)[1]
    done = httpx.get(
        f"{ingress.url}/install/callback?{query}", cookies={"frameio_kit_install_state": value}, timeout=20
    )
    assert done.status_code == 303, done.text
    session = [c for c in done.headers.get_list("set-cookie") if c.startswith("frameio_kit_install=")]
    assert len(session) == 1 and "Secure" in session[0] and "HttpOnly" in session[0]


# -- 14. an account taken off allowed_accounts -----------------------------------------------------------


def test_an_account_removed_from_allowed_accounts_gets_no_events_and_only_its_admin_can_uninstall(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, redis_client: redis.Redis
) -> None:
    standin = api[1]
    admin = _signed_in_as(api, ingress, ADMIN)
    assert "Installed." in admin.install("acc-B", "ws-9").text
    hook_id, hook_secret = _secret(standin, "webhook", "acc-B", "ws-9")
    action_id, action_secret = _secret(standin, "action", "acc-B", "ws-9")
    assert post(ingress.url, webhook("acc-B", "ws-9"), hook_secret) == 202

    ingress.start(TEST_ALLOWED_ACCOUNTS="acc-A")  # the operator takes acc-B off the list
    assert post(ingress.url, webhook("acc-B", "ws-9"), hook_secret) == 401
    assert post(ingress.url, action("review.summarize", "acc-B", "ws-9", action_id), action_secret) == 401

    member = _signed_in_as(api, ingress, MEMBER)  # a plain member of acc-B removes nothing
    assert member.post("uninstall", "acc-B", "ws-9", confirm="yes").status_code == 403
    assert hook_id in standin.webhooks

    admin = _signed_in_as(api, ingress, ADMIN)
    listing = admin.http.get(f"{ingress.url}/install/workspaces", params={"account_id": "acc-B"})
    assert listing.status_code == 200 and "Workspace ws-9" in listing.text
    page = admin.status("acc-B", "ws-9")
    assert page.status_code == 200 and "id='retired'" in page.text and "id='uninstall'" in page.text
    assert "id='update'" not in page.text and "id='rotate'" not in page.text and "field.api_key" not in page.text
    assert admin.post("execute", "acc-B", "ws-9", op="update", **{"field.region": "eu"}).status_code == 403
    assert admin.post("rotate", "acc-B", "ws-9").status_code == 403

    done = admin.post("uninstall", "acc-B", "ws-9", confirm="yes")
    assert done.status_code == 200 and "Uninstalled." in done.text and "id='install'" not in done.text
    assert standin.in_workspace("webhook", "acc-B", "ws-9") == [] and action_id not in standin.actions
    assert redis_client.exists(installation_key("acc-B", "ws-9")) == 0
    # Nothing left to remove: the account is as closed as one never allowed.
    assert admin.status("acc-B", "ws-9").status_code == 403
    page = admin.post("execute", "acc-B", "ws-9", op="install", **{"field.api_key": "k", "field.region": "eu"})
    assert page.status_code == 403
