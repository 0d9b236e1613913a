"""A local stand-in for the Frame.io V4 API an install uses: accounts, workspaces, webhooks and
custom actions (create, list, patch, delete), returning each signing secret once, at creation,
as Frame.io does. Served on the IMS stand-in's server, which knows whose access token is whose.

Tests steer `members` (which user sees which accounts), `roles` (their role in each: `admin`,
`owner`, `member`, `reviewer`; `member` when unset), `fail_action_create_at` (answer 500 to the Nth
action create) and read `webhooks`, `actions`, `secrets` and `calls`.

Rate limits as Frame.io enforces them (`limit(call, calls, window)`): a leaky bucket per account on the
named call ("show file", "create action", "create webhook"), every answer carrying `x-ratelimit-limit`,
`x-ratelimit-remaining` and `x-ratelimit-window` (ms), a full bucket answered 429 with no `Retry-After`.
Every limited call is recorded in `seen` (time, call, account, status) for the tests to count.

As in Frame.io V4, `GET /v4/accounts` lists the caller's own roles in each account (`roles`, a list,
SDK `Account.roles`), and only an account admin or owner may create, change or delete webhooks and
custom actions (members get 403); any member may list them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.ims_standin import ImsStandIn


@dataclass
class FrameioStandIn:
    ims: ImsStandIn
    members: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, dict[str, str]] = field(default_factory=dict)
    """user -> account -> role; a member with no entry has the role `member`."""
    workspaces: dict[str, list[str]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    """Every secret handed out, by resource id (what Frame.io would sign with)."""
    calls: Counter[str] = field(default_factory=Counter)
    fail_action_create_at: int | None = None
    files: dict[str, str] = field(default_factory=dict)
    """file id -> name for GET /v4/accounts/{a}/files/{id} (any other id answers a made-up file)."""
    limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    seen: list[tuple[float, str, str, int]] = field(default_factory=list)
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    _full: set[str] = field(default_factory=set)
    _action_creates: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def routes(self) -> list[Route]:
        return [
            Route("/v4/accounts", self._accounts, methods=["GET"]),
            Route("/v4/accounts/{a}/workspaces", self._workspaces, methods=["GET"]),
            Route("/v4/accounts/{a}/workspaces/{w}/webhooks", self._webhooks, methods=["GET", "POST"]),
            Route("/v4/accounts/{a}/webhooks/{id}", self._webhook, methods=["PATCH", "DELETE", "GET"]),
            Route("/v4/accounts/{a}/workspaces/{w}/actions", self._actions, methods=["GET", "POST"]),
            Route("/v4/accounts/{a}/actions/{id}", self._action, methods=["PATCH", "DELETE", "GET"]),
            Route("/v4/accounts/{a}/files/{id}", self._file, methods=["GET"]),
        ]

    # -- rate limits ------------------------------------------------------------------------------

    def limit(self, call: str, calls: int, window: float, *, full: bool = False) -> None:
        """Limit `call` to `calls` per `window` seconds per account; `full`: every bucket starts full."""
        with self._lock:
            self.limits[call] = (calls, window)
            for key in [k for k in self._buckets if k[0] == call]:
                del self._buckets[key]
            self._full.discard(call)
            if full:
                self._full.add(call)

    def _throttle(self, call: str, account: str) -> tuple[int, dict[str, str]]:
        """(status, headers) of one `call` for `account`: 429 when its bucket is full; 200 and no headers
        for a call without a limit."""
        now = time.monotonic()
        with self._lock:
            if call not in self.limits:
                return 200, {}
            calls, window = self.limits[call]
            start = float(calls) if call in self._full else 0.0
            level, at = self._buckets.get((call, account), (start, now))
            level = max(0.0, level - (now - at) * calls / window)
            status = 429 if level + 1 > calls else 200
            if status == 200:
                level += 1
            self._buckets[(call, account)] = (level, now)
            self.seen.append((now, call, account, status))
        headers = {
            "x-ratelimit-limit": str(calls),
            "x-ratelimit-remaining": str(max(0, int(calls - level))),
            "x-ratelimit-window": str(int(window * 1000)),
        }
        return status, headers

    def answered(self, call: str, account: str | None = None, status: int | None = None) -> list[float]:
        """The times `call` was answered (for `account`, with `status`), oldest first."""
        with self._lock:
            return [
                t
                for t, c, a, s in self.seen
                if c == call and (account is None or a == account) and (status is None or s == status)
            ]

    @staticmethod
    def most_in_any_window(times: list[float], window: float, after: float = float("-inf")) -> int:
        """The most calls in any window of `window` seconds (half-open) starting at or after `after`."""
        times = sorted(t for t in times if t >= after)
        most, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= window:
                first += 1
            most = max(most, last - first + 1)
        return most

    @staticmethod
    def busiest_window(times: list[float], window: float, after: float = float("-inf")) -> list[float]:
        """The calls of the busiest window (as `most_in_any_window`), relative to its first: for messages."""
        times = sorted(t for t in times if t >= after)
        best: list[float] = []
        first = 0
        for last, t in enumerate(times):
            while t - times[first] >= window:
                first += 1
            if last - first + 1 > len(best):
                best = times[first : last + 1]
        return [round(t - best[0], 3) for t in best]

    @staticmethod
    def _too_many(headers: dict[str, str]) -> Response:
        return JSONResponse({"errors": [{"detail": "rate limit exceeded"}]}, status_code=429, headers=headers)

    def in_workspace(self, kind: str, account: str, workspace: str) -> list[dict[str, Any]]:
        table = self.webhooks if kind == "webhook" else self.actions
        return [r for r in table.values() if r["account_id"] == account and r["workspace_id"] == workspace]

    # -- plumbing -------------------------------------------------------------------------------

    def _user(self, request: Request) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self.ims.user_of(token)

    def role_of(self, user: str, account: str) -> str:
        return self.roles.get(user, {}).get(account, "member")

    def _may(self, request: Request, account: str, write: bool = False) -> bool:
        user = self._user(request)
        if user is None or account not in self.members.get(user, []):
            return False
        return not write or self.role_of(user, account) in {"admin", "owner"}

    def _denied(self, request: Request) -> Response:
        status = 401 if self._user(request) is None else 403
        return JSONResponse({"errors": [{"detail": "forbidden"}]}, status_code=status)

    # -- endpoints --------------------------------------------------------------------------------

    async def _accounts(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return self._denied(request)
        return JSONResponse(
            {
                "data": [
                    {"id": a, "display_name": f"Account {a}", "name": f"Account {a}", "roles": [self.role_of(user, a)]}
                    for a in self.members.get(user, [])
                ],
                "links": {"next": None},
            }
        )

    async def _workspaces(self, request: Request) -> Response:
        account = request.path_params["a"]
        if not self._may(request, account):
            return self._denied(request)
        return JSONResponse({"data": [{"id": w, "name": f"Workspace {w}"} for w in self.workspaces.get(account, [])]})

    async def _webhooks(self, request: Request) -> Response:
        return await self._collection(request, "webhook", self.webhooks)

    async def _actions(self, request: Request) -> Response:
        return await self._collection(request, "action", self.actions)

    async def _webhook(self, request: Request) -> Response:
        return await self._item(request, "webhook", self.webhooks)

    async def _action(self, request: Request) -> Response:
        return await self._item(request, "action", self.actions)

    async def _collection(self, request: Request, kind: str, table: dict[str, dict[str, Any]]) -> Response:
        account, workspace = request.path_params["a"], request.path_params["w"]
        write = request.method != "GET"
        if not self._may(request, account, write) or workspace not in self.workspaces.get(account, []):
            return self._denied(request)
        if request.method == "GET":
            self.calls[f"list {kind}"] += 1
            return JSONResponse({"data": self.in_workspace(kind, account, workspace), "links": {"next": None}})
        status, limit_headers = self._throttle(f"create {kind}", account)
        if status == 429:
            return self._too_many(limit_headers)
        data = (await request.json())["data"]
        with self._lock:
            self.calls[f"create {kind}"] += 1
            if kind == "action":
                self._action_creates += 1
                if self.fail_action_create_at is not None and self._action_creates == self.fail_action_create_at:
                    return JSONResponse({"errors": [{"detail": "internal error"}]}, status_code=500)
            resource_id = f"{kind}-{secrets.token_hex(4)}"
            secret = secrets.token_urlsafe(24)
            table[resource_id] = {"id": resource_id, "account_id": account, "workspace_id": workspace, **data}
            self.secrets[resource_id] = secret
        return JSONResponse({"data": {**table[resource_id], "secret": secret}}, status_code=201, headers=limit_headers)

    async def _file(self, request: Request) -> Response:
        """A file, for any bearer token (the handlers under test call it with App(token=...))."""
        account, file_id = request.path_params["a"], request.path_params["id"]
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"errors": [{"detail": "unauthorized"}]}, status_code=401)
        status, headers = self._throttle("show file", account)
        if status == 429:
            return self._too_many(headers)
        with self._lock:
            self.calls["show file"] += 1
        name = self.files.get(file_id, f"{file_id}.mov")
        return JSONResponse({"data": {"id": file_id, "name": name, "type": "file"}}, headers=headers)

    async def _item(self, request: Request, kind: str, table: dict[str, dict[str, Any]]) -> Response:
        account, resource_id = request.path_params["a"], request.path_params["id"]
        if not self._may(request, account, write=request.method != "GET"):
            return self._denied(request)
        record = table.get(resource_id)
        if record is None or record["account_id"] != account:
            return JSONResponse({"errors": [{"detail": "not found"}]}, status_code=404)
        if request.method == "DELETE":
            self.calls[f"delete {kind}"] += 1
            del table[resource_id]
            return Response(status_code=204)
        if request.method == "PATCH":
            self.calls[f"update {kind}"] += 1
            record.update((await request.json())["data"])
        return JSONResponse({"data": record})  # never the secret again
