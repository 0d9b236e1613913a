"""Adobe IMS sign-in configuration and the request-scoped user token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.core.events import ActionEvent

DEFAULT_SCOPES = ["openid", "email", "profile", "offline_access", "additional_info.roles"]
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"

AuthCompleteCallback = Callable[[ActionEvent], Awaitable[None]]
"""Called after a user signed in from an action's sign-in Form, with the original action event and
the user's token bound (`get_user_token()` works inside)."""

_current_user_token: ContextVar[str | None] = ContextVar("frameio_kit_user_token", default=None)
_current_account: ContextVar[str | None] = ContextVar("frameio_kit_event_account", default=None)


class OAuthConfig(BaseModel):
    """OAuth configuration for Adobe IMS authentication.

    `storage` is any py-key-value `AsyncKeyValue`; None means the Redis store that ingress and
    workers share (a process-local memory store in dev mode). `encryption_key` is one Fernet key,
    or several separated by commas for rotation (the first encrypts, all decrypt); None reads
    FRAMEIO_KIT_ENCRYPTION_KEYS. `ims_url` None reads FRAMEIO_KIT_IMS_URL (default Adobe's production
    IMS). `on_auth_complete` lets the action that asked for sign-in resume (docs/oauth.md).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client_id: str
    client_secret: str
    base_url: str
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    storage: Any | None = None
    encryption_key: str | None = None
    token_refresh_buffer_seconds: int = 300
    http_client: httpx.AsyncClient | None = None
    ims_url: str | None = None
    on_auth_complete: AuthCompleteCallback | None = None

    @property
    def redirect_uri(self) -> str:
        """The OAuth callback, `{base_url}/auth/callback`; register it in Adobe's console."""
        return f"{self.base_url.rstrip('/')}/auth/callback"

    def __repr_args__(self) -> Any:
        # The client secret and keys must not end up in logs through a repr.
        for name, value in super().__repr_args__():
            yield name, ("**********" if name in {"client_secret", "encryption_key"} and value else value)


def get_user_token() -> str:
    """Get the authenticated user's access token.

    Inside an action handler registered with `require_user_auth=True` (ingress), and inside a
    webhook handler or action job (worker) for the event's user when that user has signed in.
    The token lives in a context variable, never on the event.

    Raises:
        RuntimeError: outside such a handler, or in a worker when the event's user has not signed in.
    """
    token = _current_user_token.get()
    if token is None:
        raise RuntimeError(
            "get_user_token(): no signed-in user here (outside a require_user_auth action, or the event's "
            "user has not signed in with Adobe)"
        )
    return token


def current_user_token() -> str | None:
    """The bound token, or None (for the framework: it binds a stored token only when none is bound)."""
    return _current_user_token.get()


def set_user_token(token: str | None) -> Token[str | None]:
    """Bind `token` for the current task; returns the handle `reset_user_token` takes."""
    return _current_user_token.set(token)


def reset_user_token(handle: Token[str | None]) -> None:
    _current_user_token.reset(handle)


def current_event_account() -> str | None:
    """The account of the event whose handler is running, or None outside a handler."""
    return _current_account.get()


def bind_event_account(account_id: str | None) -> Token[str | None]:
    """Bind the verified event's account while its handler runs; returns the handle to reset."""
    return _current_account.set(account_id)


def reset_event_account(handle: Token[str | None]) -> None:
    _current_account.reset(handle)


def with_mount_prefix(base_url: str, root_path: str) -> str:
    """`base_url` plus the ASGI mount prefix (`root_path`) when the app is mounted under one and the
    configured URL does not already end with it: the public URL of this app's routes."""
    base = base_url.rstrip("/")
    prefix = root_path.rstrip("/")
    return base + prefix if prefix and not base.endswith(prefix) else base
