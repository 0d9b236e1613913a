"""`FrameioAdminApi`: the Frame.io V4 calls an install makes with the admin's token.

Plain httpx, not the `frameio` SDK: the SDK retries failed requests on its own, and a retried
POST whose first attempt did reach Frame.io creates a second webhook or action (an orphan with a
secret nobody holds). Here nothing is retried behind the installer's back but a rate-limited call,
which Frame.io did not process; every failure is a `FrameioApiError` with the step and status, and
the token never appears in an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from shared.errors import FrameioApiError, RateLimited

logger = logging.getLogger("frameio_kit.install")

DEFAULT_API_URL = "https://api.frame.io"
RATE_LIMIT_PATIENCE = 180.0
"""Seconds one admin call may spend waiting out Frame.io's rate limit (creates: 10 a minute) before
the step fails (and an install is compensated)."""
MAX_PAGES = 50
ADMIN_ROLES = frozenset({"admin", "owner"})
"""Account roles that may create webhooks and custom actions in Frame.io (members, reviewers may not)."""


def is_account_admin(account: dict[str, Any]) -> bool:
    """Whether an entry of `GET /v4/accounts` says the signed-in user administers that account.

    Frame.io V4 lists the current user's own role(s) in each account as `roles` (`admin`, `member`,
    `owner`; SDK `Account.roles`). Anything else (absent, not a list) counts as no admin right.
    """
    roles = account.get("roles")
    return isinstance(roles, list) and any(str(role) in ADMIN_ROLES for role in roles)


class FrameioAdminApi:
    """Accounts, workspaces, webhooks and custom actions of the signed-in admin."""

    def __init__(self, token: str, http: httpx.AsyncClient, base_url: str | None = None) -> None:
        self._token = token
        self._http = http
        self._base = (base_url or DEFAULT_API_URL).rstrip("/")

    async def _call(self, step: str, method: str, path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self._send(step, method, path, json)
        if method == "DELETE" and response.status_code == 404:
            return {}  # already gone: what a delete wanted
        if response.status_code >= 300:
            raise FrameioApiError(step, response.status_code)
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise FrameioApiError(step, 502) from None
        return body if isinstance(body, dict) else {}

    async def _send(self, step: str, method: str, path: str, json: dict[str, Any] | None) -> httpx.Response:
        """One request; a call Frame.io did not take for its rate limit (RateLimited from the shared
        limiter, or a plain 429 from a client without it) was not processed, so it is sent again after
        the wait it names, for at most RATE_LIMIT_PATIENCE seconds in all (docs/limits.md)."""
        waited = 0.0
        while True:
            try:
                response = await self._http.request(
                    method,
                    f"{self._base}{path}",
                    json=json,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=15.0,
                )
            except RateLimited as exc:
                delay = max(exc.retry_after, 0.1)
            except httpx.HTTPError:
                raise FrameioApiError(step, 0) from None
            else:
                if response.status_code != 429:
                    return response
                await response.aclose()
                delay = _window_of(response)
            if waited + delay > RATE_LIMIT_PATIENCE:
                raise FrameioApiError(step, 429)
            logger.info("%s: Frame.io rate limit, sending again in %.1fs", step, delay)
            await asyncio.sleep(delay)
            waited += delay

    async def _list(self, step: str, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_path: str | None = path
        for _ in range(MAX_PAGES):
            if not next_path:
                break
            body = await self._call(step, "GET", next_path)
            items += [d for d in body.get("data") or [] if isinstance(d, dict)]
            links = body.get("links")
            next_path = links.get("next") if isinstance(links, dict) else None
        return items

    async def me(self) -> str:
        return (await self.profile())[0]

    async def profile(self) -> tuple[str, str, str]:
        """The signed-in user's id, name and email (name and email "" when Frame.io gives none)."""
        body = await self._call("GET /v4/me", "GET", "/v4/me")
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise FrameioApiError("GET /v4/me", 502)
        return str(data["id"]), str(data.get("name") or ""), str(data.get("email") or "")

    async def accounts(self) -> list[dict[str, Any]]:
        """The signed-in user's accounts, each with their own `roles` in it (see `is_account_admin`)."""
        return await self._list("listing accounts", "/v4/accounts")

    async def workspaces(self, account_id: str) -> list[dict[str, Any]]:
        return await self._list("listing workspaces", f"/v4/accounts/{_seg(account_id)}/workspaces")

    async def create_webhook(
        self, account_id: str, workspace_id: str, *, name: str, url: str, events: list[str]
    ) -> tuple[str, str]:
        body = await self._call(
            "creating the webhook",
            "POST",
            f"/v4/accounts/{_seg(account_id)}/workspaces/{_seg(workspace_id)}/webhooks",
            {"data": {"name": name, "url": url, "events": events}},
        )
        return _id_and_secret("creating the webhook", body)

    async def update_webhook(self, account_id: str, webhook_id: str, *, url: str, events: list[str]) -> None:
        await self._call(
            "updating the webhook",
            "PATCH",
            f"/v4/accounts/{_seg(account_id)}/webhooks/{_seg(webhook_id)}",
            {"data": {"url": url, "events": events}},
        )

    async def delete_webhook(self, account_id: str, webhook_id: str) -> None:
        path = f"/v4/accounts/{_seg(account_id)}/webhooks/{_seg(webhook_id)}"
        await self._call("deleting the webhook", "DELETE", path)

    async def list_webhooks(self, account_id: str, workspace_id: str) -> list[dict[str, Any]]:
        return await self._list(
            "listing webhooks", f"/v4/accounts/{_seg(account_id)}/workspaces/{_seg(workspace_id)}/webhooks"
        )

    async def create_action(
        self, account_id: str, workspace_id: str, *, name: str, description: str, event: str, url: str
    ) -> tuple[str, str]:
        step = f"creating action {name!r}"
        body = await self._call(
            step,
            "POST",
            f"/v4/accounts/{_seg(account_id)}/workspaces/{_seg(workspace_id)}/actions",
            {"data": {"name": name, "description": description, "event": event, "url": url}},
        )
        return _id_and_secret(step, body)

    async def update_action(self, account_id: str, action_id: str, *, name: str, description: str, url: str) -> None:
        await self._call(
            f"updating action {name!r}",
            "PATCH",
            f"/v4/accounts/{_seg(account_id)}/actions/{_seg(action_id)}",
            {"data": {"name": name, "description": description, "url": url}},
        )

    async def delete_action(self, account_id: str, action_id: str, name: str = "") -> None:
        step = f"deleting action {name!r}" if name else "deleting an action"
        await self._call(step, "DELETE", f"/v4/accounts/{_seg(account_id)}/actions/{_seg(action_id)}")

    async def list_actions(self, account_id: str, workspace_id: str) -> list[dict[str, Any]]:
        return await self._list(
            "listing actions", f"/v4/accounts/{_seg(account_id)}/workspaces/{_seg(workspace_id)}/actions"
        )


def _window_of(response: httpx.Response) -> float:
    """A 429's wait: its window (Frame.io sends `x-ratelimit-window` in ms, no Retry-After), else 1 s."""
    try:
        return max(float(response.headers.get("x-ratelimit-window", "1000")) / 1000, 0.1)
    except ValueError:
        return 1.0


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _id_and_secret(step: str, body: dict[str, Any]) -> tuple[str, str]:
    data = body.get("data")
    if not isinstance(data, dict) or not data.get("id") or not data.get("secret"):
        raise FrameioApiError(step, 502)  # created (maybe) but unusable: the caller cleans up by listing
    return str(data["id"]), str(data["secret"])
