"""End to end: the install pages over real HTTP, a real ingress and worker, real Redis, and stand-ins
for Adobe IMS and the Frame.io API (acceptance points 2-5 of issue 13; 1 is in the browser test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from shared.redis_keys import installation_intent_key, installation_key
from tests.frameio_standin import FrameioStandIn
from tests.helpers import Service, wait_until
from tests.ims_standin import ImsServer
from tests.install_support import (
    INSTALL_APP,
    Admin,
    Ingress,
    action,
    install_env,
    post,
    webhook,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(
    api: tuple[ImsServer, FrameioStandIn],
    ingress: Ingress,
    start_worker: Callable[..., Service],
    base_env: dict[str, str],
) -> Service:
    env = install_env(base_env, api[0].standin.url, ingress.url)
    return start_worker(INSTALL_APP, extra_env={k: v for k, v in env.items() if k not in base_env}, concurrency=2)


def _secret_of(
    standin: FrameioStandIn, kind: str, account: str, workspace: str, event: str | None = None
) -> tuple[str, str]:
    found = [r for r in standin.in_workspace(kind, account, workspace) if event is None or r.get("event") == event]
    assert len(found) == 1, found
    return found[0]["id"], standin.secrets[found[0]["id"]]


def test_each_workspace_is_verified_with_its_own_secret_only(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, worker: Service, records: Callable[[str], list[Any]]
) -> None:
    standin = api[1]
    admin = Admin(ingress.url)
    assert "Account acc-A" in admin.sign_in().text
    assert "Installed." in admin.install("acc-A", "ws-1", api_key="key-one", region="eu").text
    assert "Installed." in admin.install("acc-A", "ws-2", api_key="key-two", region="us").text
    _, hook_1 = _secret_of(standin, "webhook", "acc-A", "ws-1")
    _, hook_2 = _secret_of(standin, "webhook", "acc-A", "ws-2")
    action_1, act_1 = _secret_of(standin, "action", "acc-A", "ws-1")
    action_2, act_2 = _secret_of(standin, "action", "acc-A", "ws-2")

    assert post(ingress.url, webhook("acc-A", "ws-1", resource="r-1"), hook_2) == 401
    assert post(ingress.url, webhook("acc-A", "ws-2", resource="r-2"), hook_1) == 401
    assert post(ingress.url, action("review.summarize", "acc-A", "ws-1", action_1), act_2) == 401
    assert post(ingress.url, action("review.summarize", "acc-A", "ws-2", action_2), act_1) == 401
    assert post(ingress.url, webhook("acc-A", "ws-1", resource="r-1"), hook_1) == 202
    assert post(ingress.url, webhook("acc-A", "ws-2", resource="r-2"), hook_2) == 202

    seen = wait_until(lambda: len(records("webhook")) >= 2 and records("webhook"), timeout=30, what="both webhooks")
    by_resource = {r["resource"]: r for r in seen}
    assert {r["resource"] for r in seen} == {"r-1", "r-2"}
    assert (by_resource["r-1"]["workspace"], by_resource["r-1"]["region"]) == ("ws-1", "eu")
    assert (by_resource["r-2"]["workspace"], by_resource["r-2"]["region"]) == ("ws-2", "us")
    assert by_resource["r-1"]["api_key"] != by_resource["r-2"]["api_key"]


def test_update_creates_and_deletes_exactly_the_changed_actions_and_uninstall_removes_everything(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, redis_client: redis.Redis
) -> None:
    standin = api[1]
    admin = Admin(ingress.url)
    admin.sign_in()
    assert "Installed." in admin.install("acc-A", "ws-1").text
    hook_id, hook_secret = _secret_of(standin, "webhook", "acc-A", "ws-1")
    first_action, first_secret = _secret_of(standin, "action", "acc-A", "ws-1")

    ingress.start(TEST_EXTRA_ACTION="1")  # a release with one more action
    admin = Admin(ingress.url)
    admin.sign_in()
    assert "Action created: <b>Export</b>" in admin.status("acc-A", "ws-1").text
    before = standin.calls.copy()
    assert "Updated." in admin.update("acc-A", "ws-1").text
    assert standin.calls["create action"] - before["create action"] == 1
    assert standin.calls["create webhook"] == before["create webhook"]
    export_id, export_secret = _secret_of(standin, "action", "acc-A", "ws-1", "review.export")
    assert post(ingress.url, action("review.export", "acc-A", "ws-1", export_id), export_secret) == 200
    assert post(ingress.url, action("review.summarize", "acc-A", "ws-1", first_action), first_secret) == 200

    ingress.start()  # the action is gone from the release
    admin = Admin(ingress.url)
    admin.sign_in()
    assert "Action deleted: <b>Export</b>" in admin.status("acc-A", "ws-1").text
    assert "Updated." in admin.update("acc-A", "ws-1").text
    assert export_id not in standin.actions
    assert first_action in standin.actions and hook_id in standin.webhooks
    # No handler and no install secret for it any more: refused like any unsigned request.
    assert post(ingress.url, action("review.export", "acc-A", "ws-1", export_id), export_secret) == 401

    admin.status("acc-A", "ws-1")
    assert "Uninstalled." in admin.post("uninstall", "acc-A", "ws-1", confirm="yes").text
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == []
    assert standin.in_workspace("action", "acc-A", "ws-1") == []
    assert redis_client.exists(installation_key("acc-A", "ws-1")) == 0
    assert post(ingress.url, webhook("acc-A", "ws-1"), hook_secret) == 401
    assert post(ingress.url, action("review.summarize", "acc-A", "ws-1", first_action), first_secret) == 401


def test_a_failure_at_the_second_action_leaves_no_orphan_and_the_page_says_so(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, redis_client: redis.Redis
) -> None:
    ingress.start(TEST_EXTRA_ACTION="1")
    standin = api[1]
    standin.fail_action_create_at = 2
    admin = Admin(ingress.url)
    admin.sign_in()
    page = admin.install("acc-A", "ws-1")
    assert page.status_code == 502
    assert "creating action &#x27;Summarize&#x27; failed (HTTP 500)" in page.text
    assert "were deleted; nothing is installed" in page.text
    assert standin.calls["create webhook"] == 1 and standin.calls["create action"] == 2
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == []
    assert standin.in_workspace("action", "acc-A", "ws-1") == []
    assert redis_client.exists(installation_key("acc-A", "ws-1"), installation_intent_key("acc-A", "ws-1")) == 0

    standin.fail_action_create_at = None
    assert "Installed." in admin.install("acc-A", "ws-1").text
    assert len(standin.in_workspace("action", "acc-A", "ws-1")) == 2


def test_an_account_outside_allowed_accounts_gets_403_at_install(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress, redis_client: redis.Redis
) -> None:
    standin = api[1]
    admin = Admin(ingress.url)
    listing = admin.sign_in()
    assert "Account acc-A" in listing.text and "Account acc-C" not in listing.text
    assert admin.status("acc-C", "ws-5").status_code == 403
    admin.status("acc-A", "ws-1")  # a valid CSRF token of this session
    page = admin.post("execute", "acc-C", "ws-5", op="install", **{"field.api_key": "k", "field.region": "eu"})
    assert page.status_code == 403
    assert standin.calls["create webhook"] == 0
    assert redis_client.exists(installation_key("acc-C", "ws-5")) == 0


def test_a_post_without_the_session_csrf_token_is_refused(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    admin = Admin(ingress.url)
    admin.sign_in()
    admin.status("acc-A", "ws-1")
    admin.csrf = "forged"
    page = admin.post("execute", "acc-A", "ws-1", op="install", **{"field.api_key": "k", "field.region": "eu"})
    assert page.status_code == 403
    assert api[1].calls["create webhook"] == 0


def test_signed_out_visitors_see_only_the_landing_page(ingress: Ingress) -> None:
    import httpx

    landing = httpx.get(f"{ingress.url}/install")
    assert landing.status_code == 200 and "Sign in with Adobe" in landing.text
    assert "Review Bot" in landing.text and "review.summarize" not in landing.text
    assert (
        httpx.get(f"{ingress.url}/install/status", params={"account_id": "acc-A", "workspace_id": "ws-1"}).status_code
        == 401
    )


def test_after_rotation_old_and_new_secrets_pass_for_the_grace_period_then_only_the_new(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    ingress.start(FRAMEIO_KIT_INSTALL_SECRET_GRACE="3")
    standin = api[1]
    admin = Admin(ingress.url)
    admin.sign_in()
    admin.install("acc-A", "ws-1")
    _, old = _secret_of(standin, "webhook", "acc-A", "ws-1")
    admin.status("acc-A", "ws-1")
    assert "Signing secrets rotated." in admin.post("rotate", "acc-A", "ws-1").text
    _, new = _secret_of(standin, "webhook", "acc-A", "ws-1")
    assert new != old and len(standin.webhooks) == 1
    assert post(ingress.url, webhook("acc-A", "ws-1"), new) == 202
    assert post(ingress.url, webhook("acc-A", "ws-1"), old) == 202
    wait_until(lambda: post(ingress.url, webhook("acc-A", "ws-1"), old) == 401, timeout=15, what="grace to end")
    assert post(ingress.url, webhook("acc-A", "ws-1"), new) == 202
