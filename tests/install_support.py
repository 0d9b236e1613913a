"""Shared pieces of the install tests: the IMS + Frame.io API stand-in, an ingress serving
tests/apps/install.py at a known URL, and an admin who drives the /install pages over HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from frameio_kit import testing
from tests.frameio_standin import FrameioStandIn
from tests.helpers import ROOT, Service, cli_command, free_port, post_signed
from tests.ims_standin import ImsServer, ImsStandIn

INSTALL_APP = "tests.apps.install:app"
ADMIN = "admin-1"
MEMBER = "member-1"
"""A plain member of acc-A and acc-B (role `member`): may sign in, but is offered no account and changes nothing."""
ENCRYPTION_KEY = Fernet.generate_key().decode()
SESSION_SECRET = "install-session-secret-" + "x" * 24


def start_api() -> tuple[ImsServer, FrameioStandIn]:
    """IMS and the Frame.io API on one local server; `admin-1` administers accounts acc-A, acc-B, acc-C,
    `member-1` is a plain member of acc-A and acc-B (sign in as them with `ims.sign_in_as = MEMBER`)."""
    ims = ImsStandIn(sign_in_as=ADMIN)
    api = FrameioStandIn(
        ims,
        members={ADMIN: ["acc-A", "acc-B", "acc-C"], MEMBER: ["acc-A", "acc-B"]},
        roles={ADMIN: {"acc-A": "admin", "acc-B": "owner", "acc-C": "admin"}},
        workspaces={"acc-A": ["ws-1", "ws-2"], "acc-B": ["ws-9"], "acc-C": ["ws-5"]},
    )
    ims.extra_routes = api.routes()
    server = ImsServer(ims)
    server.start()
    return server, api


def install_env(base_env: dict[str, str], ims_url: str, public_url: str, **extra: str) -> dict[str, str]:
    return {
        **base_env,
        "FRAMEIO_KIT_IMS_URL": ims_url,
        "FRAMEIO_KIT_API_URL": ims_url,
        "FRAMEIO_KIT_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "FRAMEIO_KIT_SESSION_SECRET": SESSION_SECRET,
        "TEST_PUBLIC_URL": public_url,
        **extra,
    }


class Ingress:
    """An ingress on a fixed port, restartable with another environment (a new release)."""

    def __init__(self, base_env: dict[str, str], ims_url: str, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._base_env, self._ims_url, self._tmp = base_env, ims_url, tmp_path
        self.service: Service | None = None

    def start(self, **extra: str) -> None:
        self.stop()
        env = install_env(self._base_env, self._ims_url, self.url, **extra)
        command = cli_command("ingress", INSTALL_APP, "--port", str(self.port))
        self.service = Service("ingress", command, env, self._tmp, cwd=ROOT)
        self.service.wait_for_http(self.url + "/healthz")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None


def ingress_fixture(base_env: dict[str, str], ims_url: str, tmp_path: Path) -> Iterator[Ingress]:
    ingress = Ingress(base_env, ims_url, tmp_path)
    ingress.start()
    yield ingress
    ingress.stop()


class Admin:
    """A workspace admin using the install pages with a cookie jar, as a browser would."""

    def __init__(self, ingress_url: str) -> None:
        self.url = ingress_url
        self.http = httpx.Client(follow_redirects=True, timeout=20)
        self.csrf = ""

    def sign_in(self) -> httpx.Response:
        page = self.http.get(f"{self.url}/install/login")
        assert page.status_code == 200, page.text
        return page

    def status(self, account: str, workspace: str) -> httpx.Response:
        page = self.http.get(f"{self.url}/install/status", params={"account_id": account, "workspace_id": workspace})
        self._remember_csrf(page)
        return page

    def post(self, what: str, account: str, workspace: str, **fields: str) -> httpx.Response:
        form = {"csrf": self.csrf, "account_id": account, "workspace_id": workspace, **fields}
        page = self.http.post(f"{self.url}/install/{what}", data=form)
        self._remember_csrf(page)
        return page

    def install(self, account: str, workspace: str, api_key: str = "key-1", region: str = "eu") -> httpx.Response:
        self.status(account, workspace)
        return self.post(
            "execute", account, workspace, op="install", **{"field.api_key": api_key, "field.region": region}
        )

    def update(self, account: str, workspace: str) -> httpx.Response:
        self.status(account, workspace)
        return self.post("execute", account, workspace, op="update", **{"field.region": "eu"})

    def _remember_csrf(self, page: httpx.Response) -> None:
        found = re.search(r"name='csrf' value='([^']+)'", page.text)
        if found:
            self.csrf = unescape(found.group(1))


def webhook(
    account: str, workspace: str, event_type: str = "file.ready", resource: str | None = None
) -> dict[str, Any]:
    return testing.webhook_payload(
        event_type,
        resource_id=resource or f"file-{uuid.uuid4().hex[:8]}",
        resource_type="file",
        account_id=account,
        workspace_id=workspace,
        project_id="proj-1",
        user_id="user-1",
    )


def action(event_type: str, account: str, workspace: str, action_id: str) -> dict[str, Any]:
    return testing.action_payload(
        event_type,
        interaction_id=str(uuid.uuid4()),
        resource_id="file-1",
        account_id=account,
        workspace_id=workspace,
        project_id="proj-1",
        user_id="user-1",
        action_id=action_id,
    )


def post(url: str, payload: dict[str, Any], secret: str) -> int:
    return post_signed(url + "/", payload, secret).status_code
