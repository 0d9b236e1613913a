"""A local stand-in for the Frame.io V4 API an install uses: accounts, workspaces, webhooks and
custom actions (create, list, patch, delete), returning each signing secret once, at creation,
as Frame.io does. Served on the IMS stand-in's server, which knows whose access token is whose.

Tests steer `members` (which user sees which accounts), `roles` (their role in each: `admin`,
`owner`, `member`, `reviewer`; `member` when unset), `fail_action_create_at` (answer 500 to the Nth
action create) and read `webhooks`, `actions`, `secrets` and `calls`.

As in Frame.io V4, `GET /v4/accounts` lists the caller's own roles in each account (`roles`, a list,
SDK `Account.roles`), and only an account admin or owner may create, change or delete webhooks and
custom actions (members get 403); any member may list them.
"""

from __future__ import annotations

import secrets
import threading
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
        ]

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
        return JSONResponse({"data": {**table[resource_id], "secret": secret}}, status_code=201)

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
