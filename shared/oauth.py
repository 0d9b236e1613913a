"""Adobe IMS sign-in configuration and the request-scoped user token."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SCOPES = ["openid", "email", "profile", "offline_access", "additional_info.roles"]
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"

_current_user_token: ContextVar[str | None] = ContextVar("frameio_kit_user_token", default=None)


class OAuthConfig(BaseModel):
    """OAuth configuration for Adobe IMS authentication."""

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

    @property
    def redirect_uri(self) -> str:
        """The OAuth callback, `{base_url}/auth/callback`; register it in Adobe's console."""
        return f"{self.base_url.rstrip('/')}/auth/callback"


def get_user_token() -> str:
    """Get the authenticated user's access token.

    Only inside a handler that runs for a signed-in user (an action registered with
    `require_user_auth=True`). The token lives in a context variable, never on the event.
    """
    token = _current_user_token.get()
    if token is None:
        raise RuntimeError("get_user_token() called outside a user-authenticated handler")
    return token


def set_user_token(token: str | None) -> object:
    """Bind `token` for the current task; returns the handle `reset_user_token` takes."""
    return _current_user_token.set(token)


def reset_user_token(handle: object) -> None:
    _current_user_token.reset(handle)  # type: ignore[arg-type]
