"""A local stand-in for Adobe IMS (authorize, token) and Frame.io's GET /v4/me, served by uvicorn in a thread.

The authorize page approves at once (redirects back with a code for `sign_in_as`), as a signed-in
Adobe user who already consented would see it, so a browser test runs the whole flow unattended.

Like IMS it rotates refresh tokens and revokes the used one, so a second refresh with the same
token fails with `invalid_grant`; it counts every call so tests can assert on them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.helpers import free_port, wait_until

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-7e41"


@dataclass
class ImsStandIn:
    """What the tests steer (`sign_in_as`, lifetimes, `reject_refresh`, `refresh_delay`) and read (`calls`)."""

    sign_in_as: str = "user-1"
    access_expires_in: int = 86399
    refresh_delay: float = 0.0
    reject_refresh: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    issued: list[str] = field(default_factory=list)
    latest_access: dict[str, str] = field(default_factory=dict)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)
    _access: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    extra_routes: list[Route] = field(default_factory=list)
    """More routes on the same server (tests/frameio_standin.py's Frame.io API)."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ims/authorize/v2", self._authorize, methods=["GET"]),
                Route("/ims/token/v3", self._token, methods=["POST"]),
                Route("/v4/me", self._me, methods=["GET"]),
                *self.extra_routes,
            ]
        )

    def user_of(self, access_token: str) -> str | None:
        """The user an access token was issued to (the API stand-in authenticates with it)."""
        return self._access.get(access_token)

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        self.calls["authorize"] += 1
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("state"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        code = "code-" + secrets.token_hex(8)
        with self._lock:
            self._codes[code] = {
                "user": self.sign_in_as,
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
            }
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # no python-multipart here
        grant = str(form.get("grant_type"))
        self.calls[grant] += 1
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant == "authorization_code":
            with self._lock:
                entry = self._codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if entry is None or entry["challenge"] != challenge or entry["redirect_uri"] != form.get("redirect_uri"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(self._issue(entry["user"]))
        if grant == "refresh_token":
            if self.refresh_delay:
                await asyncio.sleep(self.refresh_delay)
            with self._lock:
                user = self._refresh.pop(str(form.get("refresh_token")), None)  # used once, then revoked
            if self.reject_refresh or user is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "token expired"}, 400)
            return JSONResponse(self._issue(user))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    def _issue(self, user: str) -> dict[str, object]:
        access, refresh = "at-" + secrets.token_hex(20), "rt-" + secrets.token_hex(20)
        with self._lock:
            self._access[access] = user
            self._refresh[refresh] = user
            self.issued += [access, refresh]
            self.latest_access[user] = access
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": self.access_expires_in,
        }

    async def _me(self, request: Request) -> Response:
        self.calls["me"] += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user = self._access.get(token)
        if user is None:
            return JSONResponse({"errors": [{"detail": "unauthorized"}]}, status_code=401)
        return JSONResponse({"data": {"id": user, "email": f"{user}@example.test", "name": user}})


class ImsServer:
    """Serves an `ImsStandIn` on 127.0.0.1 from a daemon thread."""

    def __init__(self, standin: ImsStandIn) -> None:
        self.standin = standin
        port = free_port()
        standin.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(standin.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ims-standin", daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="IMS stand-in to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
