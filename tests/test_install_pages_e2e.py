"""The install pages over real HTTP against a real ingress, real Redis and the IMS + Frame.io
stand-ins (issue 25, item 6): Post/Redirect/Get with a notice shown once, a refused form keeps what
was typed but never a secret, uninstall only with the confirmation the server checks, sign-out
ends the session on the server, and every page says who is signed in and where."""

from __future__ import annotations

import httpx
import pytest

from tests.frameio_standin import FrameioStandIn
from tests.ims_standin import ImsServer
from tests.install_support import Admin, Ingress

pytestmark = pytest.mark.e2e

INSTALL_FIELDS = {"field.api_key": "key-1", "field.region": "eu", "field.channel": "#reviews"}


def _signed_in(ingress: Ingress) -> Admin:
    admin = Admin(ingress.url)
    admin._remember_csrf(admin.sign_in())
    return admin


def _post(admin: Admin, what: str, account: str, workspace: str, **fields: str) -> httpx.Response:
    """A POST as a form sends it, without following the redirect."""
    form = {"csrf": admin.csrf, "account_id": account, "workspace_id": workspace, **fields}
    return admin.http.post(f"{admin.url}/install/{what}", data=form, follow_redirects=False)


def test_a_change_redirects_to_a_page_that_announces_it_once(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    admin = _signed_in(ingress)
    status_url = f"{ingress.url}/install/status?account_id=acc-A&workspace_id=ws-1"
    done = _post(admin, "execute", "acc-A", "ws-1", op="install", **INSTALL_FIELDS)
    assert done.status_code == 303 and done.headers["location"] == status_url
    assert done.headers["cache-control"] == "no-store"
    assert api[1].calls["create webhook"] == 1

    page = admin.http.get(done.headers["location"])
    assert "<div class='notice ok' id='message' role='status'><p>Installed.</p></div>" in page.text
    again = admin.http.get(status_url)  # a reload: a GET, no second install, no second notice
    assert again.status_code == 200 and "id='message'" not in again.text
    assert api[1].calls["create webhook"] == 1 and api[1].calls["create action"] == 1

    rotated = _post(admin, "rotate", "acc-A", "ws-1")
    assert rotated.status_code == 303 and rotated.headers["location"] == status_url
    assert "Signing secrets rotated." in admin.http.get(status_url).text

    updated = _post(admin, "execute", "acc-A", "ws-1", op="update", **{"field.region": "us"})
    assert updated.status_code == 303
    assert "Updated." in admin.http.get(status_url).text


def test_a_forged_notice_cookie_announces_nothing(api: tuple[ImsServer, FrameioStandIn], ingress: Ingress) -> None:
    admin = _signed_in(ingress)
    admin.http.cookies.set("frameio_kit_install_notice", "installed.forged-mac", path="/install")
    page = admin.http.get(f"{ingress.url}/install")
    assert page.status_code == 200 and "Installed." not in page.text


def test_a_refused_form_keeps_what_was_typed_but_never_a_secret(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    admin = _signed_in(ingress)
    blank_key = {"field.api_key": "   ", "field.region": "us", "field.channel": "<b>#typed</b>"}
    page = _post(admin, "execute", "acc-A", "ws-1", op="install", **blank_key)
    assert page.status_code == 400
    assert "role='alert'" in page.text and "&#x27;API key&#x27; is required." in page.text
    assert "value='&lt;b&gt;#typed&lt;/b&gt;'" in page.text and "<option value='us' selected>" in page.text
    assert "id='field-api_key' name='field.api_key' required aria-invalid='true'" in page.text

    bad_region = {"field.api_key": "typed-secret-value", "field.region": "mars", "field.channel": "#c"}
    page = _post(admin, "execute", "acc-A", "ws-1", op="install", **bad_region)
    assert page.status_code == 400 and "must be one of the listed options" in page.text
    assert "typed-secret-value" not in page.text and "type it again" in page.text
    assert api[1].calls["create webhook"] == 0


def test_uninstall_runs_only_with_the_confirmation_the_server_checks(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    standin = api[1]
    admin = _signed_in(ingress)
    assert _post(admin, "execute", "acc-A", "ws-1", op="install", **INSTALL_FIELDS).status_code == 303
    (hook,) = standin.in_workspace("webhook", "acc-A", "ws-1")

    for unconfirmed in ({}, {"confirm": "no"}, {"confirm": ""}):
        page = _post(admin, "uninstall", "acc-A", "ws-1", **unconfirmed)
        assert page.status_code == 400, unconfirmed
        assert "Tick the box to confirm. Nothing was removed." in page.text and "id='confirm'" in page.text
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == [hook]
    assert standin.calls["delete webhook"] == 0

    asked = admin.http.get(f"{ingress.url}/install/uninstall", params={"account_id": "acc-A", "workspace_id": "ws-1"})
    assert asked.status_code == 200 and "Uninstall from workspace" in asked.text and "required" in asked.text
    assert "Webhook for: file.created, file.ready" in asked.text

    done = _post(admin, "uninstall", "acc-A", "ws-1", confirm="yes")
    assert done.status_code == 303
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == []
    assert "Uninstalled." in admin.http.get(done.headers["location"]).text
    again = _post(admin, "uninstall", "acc-A", "ws-1", confirm="yes")  # a re-sent form: nothing left to remove
    assert again.status_code == 409 and "This workspace is not installed." in again.text


def test_sign_out_ends_the_session_on_the_server(api: tuple[ImsServer, FrameioStandIn], ingress: Ingress) -> None:
    admin = _signed_in(ingress)
    stolen = admin.http.cookies["frameio_kit_install"]
    out = admin.http.post(f"{ingress.url}/install/logout", data={"csrf": admin.csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == f"{ingress.url}/install"
    assert any(c.startswith('frameio_kit_install="";') or c.startswith("frameio_kit_install=;") for c in
               out.headers.get_list("set-cookie")), out.headers.get_list("set-cookie")  # fmt: skip
    landing = admin.http.get(out.headers["location"])
    assert "You are signed out." in landing.text and "Not signed in" in landing.text
    replay = httpx.get(
        f"{ingress.url}/install/status",
        params={"account_id": "acc-A", "workspace_id": "ws-1"},
        cookies={"frameio_kit_install": stolen},
    )
    assert replay.status_code == 401 and "Your session has ended" in replay.text


def test_every_page_says_who_is_signed_in_and_where_with_a_way_back(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    admin = _signed_in(ingress)
    pages = {
        "accounts": admin.http.get(f"{ingress.url}/install"),
        "workspaces": admin.http.get(f"{ingress.url}/install/workspaces", params={"account_id": "acc-A"}),
        "status": admin.status("acc-A", "ws-1"),
        "refused": admin.status("acc-C", "ws-5"),
        "foreign workspace": admin.status("acc-A", "ws-9"),
    }
    for name, page in pages.items():
        assert "id='user'>admin-1</b>" in page.text and "id='sign-out'" in page.text, name
        assert "id='app-name'>Review Bot<" in page.text and "id='context'" in page.text, name
        assert page.headers["content-security-policy"].startswith("default-src 'none'"), name
    for name in ("workspaces", "status", "refused", "foreign workspace"):
        assert "id='back'" in pages[name].text, name
    assert "id='context-account' title='acc-A'>Account acc-A<" in pages["workspaces"].text
    assert "id='context-workspace' title='ws-1'>Workspace ws-1<" in pages["status"].text
    assert pages["refused"].status_code == 403 and "role='alert'" in pages["refused"].text
    assert pages["foreign workspace"].status_code == 403
    assert "id='context-workspace'>not chosen yet<" in pages["foreign workspace"].text.replace(" class='none'", "")
