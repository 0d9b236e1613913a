"""Adobe IMS sign-in configuration (`OAuthConfig`); the user token it leads to is bound in `shared.context`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.core.events import ActionEvent

DEFAULT_SCOPES = ["additional_info.roles", "offline_access", "profile", "email", "openid"]  # v0.0.10 order
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"

AuthCompleteCallback = Callable[[ActionEvent], Awaitable[None]]
"""Called after a user signed in from an action's sign-in Form, with the original action event and
the user's token bound (`get_user_token()` works inside)."""


class OAuthConfig(BaseModel):
    """OAuth configuration for Adobe IMS authentication.

    `storage` is any py-key-value `AsyncKeyValue`; None means the Redis store that ingress and
    workers share (a process-local memory store in dev mode). `encryption_key` is one Fernet key,
    or several separated by commas for rotation (the first encrypts, all decrypt); None reads
    FRAMEIO_KIT_ENCRYPTION_KEYS. `ims_url` None reads FRAMEIO_KIT_IMS_URL (default Adobe's production
    IMS). `on_auth_complete` lets the action that asked for sign-in resume (docs/oauth.md).

    The callback Adobe sends users back to is `redirect_url` when set (the full URL registered in
    Adobe's console, as in frameio-kit 0.0.10), else `{base_url}/auth/callback`, else worked out from
    the request that started the sign-in (its scheme and Host plus the mount prefix).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client_id: str
    client_secret: str
    base_url: str | None = None
    redirect_url: str | None = None
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    storage: Any | None = None
    encryption_key: str | None = None
    token_refresh_buffer_seconds: int = 300
    http_client: httpx.AsyncClient | None = None
    ims_url: str | None = None
    on_auth_complete: AuthCompleteCallback | None = None

    @property
    def redirect_uri(self) -> str | None:
        """The configured OAuth callback (register it in Adobe's console); None when it comes from the request."""
        if self.redirect_url:
            return self.redirect_url
        return f"{self.base_url.rstrip('/')}/auth/callback" if self.base_url else None

    def __repr_args__(self) -> Any:
        # The client secret and keys must not end up in logs through a repr.
        for name, value in super().__repr_args__():
            yield name, ("**********" if name in {"client_secret", "encryption_key"} and value else value)
