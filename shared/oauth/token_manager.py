"""`TokenManager`: stored user tokens, refreshed by exactly one process under a per-user Redis lock.

IMS rotates refresh tokens and revokes the used one, so two processes refreshing the same user at
once would log that user out; the lock serialises them and the losers read the winner's new pair.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from shared import redis_keys
from shared.core.events import AnyEvent
from shared.core.middleware import NextFunc
from shared.core.ui import AnyResponse
from shared.errors import (
    GrantRejected,
    IdentityProviderUnavailable,
    LockUnavailable,
    TokenExchangeError,
    TokenRefreshError,
    TokenUnreadable,
)
from shared.oauth.config import DEFAULT_IMS_URL, OAuthConfig, current_user_token, reset_user_token, set_user_token
from shared.oauth.token_store import (
    KeyValueBackend,
    MemoryBackend,
    RecordBackend,
    RedisBackend,
    TokenCipher,
    TokenData,
    TokenStore,
    encryption_keys,
)
from shared.redis_client import async_client
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.oauth")

LOCK_TIMEOUT = 30.0
"""A crashed refresher's lock frees itself after this long."""
LOCK_WAIT = 20.0


class ImsClient:
    """The two IMS calls the sign-in needs: the authorize URL and the token endpoint."""

    def __init__(self, http: httpx.AsyncClient, ims_url: str, client_id: str, client_secret: str) -> None:
        self._http = http
        self._base = ims_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret

    def authorize_url(self, *, redirect_uri: str, scopes: list[str], state: str, code_challenge: str) -> str:
        query = urlencode(
            {
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "scope": ",".join(scopes),
                "response_type": "code",
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self._base}/ims/authorize/v2?{query}"

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        return await self._token(
            {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        try:
            response = await self._http.post(f"{self._base}/ims/token/v3", data=form, timeout=10.0)
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(f"IMS unreachable ({type(exc).__name__})") from None
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            rejected = TokenRefreshError if form["grant_type"] == "refresh_token" else TokenExchangeError
            raise rejected(f"IMS refused the {form['grant_type']} grant ({response.status_code})")
        if response.status_code != 200:
            raise IdentityProviderUnavailable(f"IMS answered {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise IdentityProviderUnavailable("IMS answered a body that is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise IdentityProviderUnavailable("IMS answered without an access_token")
        return payload


class TokenManager:
    """Encrypted token storage, retrieval and automatic refresh for user authentication."""

    def __init__(
        self,
        config: OAuthConfig,
        store: TokenStore,
        state: RecordBackend,
        ims: ImsClient,
        http: httpx.AsyncClient,
        *,
        owns_http: bool,
    ) -> None:
        self.config = config
        self.store = store
        self.state = state
        self.ims = ims
        self.http = http
        self._owns_http = owns_http
        # Single-flight inside the process first, so 20 waiters poll one asyncio lock, not Redis.
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def cipher(self) -> TokenCipher:
        return self.store.cipher

    async def get_token(self, user_id: str) -> TokenData | None:
        """The user's tokens, refreshed first when within `token_refresh_buffer_seconds` of expiry.

        None when the user has not signed in, IMS rejected the refresh, or the record cannot be
        decrypted (the last two delete the record: the user must sign in again). Raises
        `IdentityProviderUnavailable` only when IMS is down and the access token has already expired.
        """
        data = await self._load(user_id)
        if data is None or not self._stale(data):
            return data
        lock = self._local.get(user_id)
        if lock is None:
            lock = self._local[user_id] = asyncio.Lock()
        async with lock:
            try:
                async with self.state.lock(redis_keys.user_token_lock_key(user_id), LOCK_TIMEOUT, LOCK_WAIT):
                    return await self._refresh_locked(user_id)
            except LockUnavailable:
                raise IdentityProviderUnavailable("token refresh still running elsewhere") from None

    async def _refresh_locked(self, user_id: str) -> TokenData | None:
        data = await self._load(user_id)  # another process may have refreshed while we waited
        if data is None or not self._stale(data):
            return data
        if data.refresh_token is None:
            return data if not data.expires_within(0) else await self._drop(user_id, "expired, no refresh token")
        try:
            payload = await self.ims.refresh(data.refresh_token.get_secret_value())
        except GrantRejected:
            return await self._drop(user_id, "refresh rejected by IMS")
        except IdentityProviderUnavailable:
            if not data.expires_within(0):
                logger.warning("token refresh for user %s failed (IMS unavailable); using the current token", user_id)
                return data
            raise
        fresh = TokenData.from_ims(payload, user_id)
        await self.store.save(user_id, fresh)
        logger.info("token refreshed for user %s", user_id)
        return fresh

    async def store_token(self, user_id: str, token: TokenData | Mapping[str, Any]) -> TokenData:
        """Store (replace) a user's tokens: a `TokenData` or an IMS token response."""
        data = token if isinstance(token, TokenData) else TokenData.from_ims(token, user_id)
        await self.store.save(user_id, data)
        return data

    async def delete_token(self, user_id: str) -> None:
        """Forget a user's tokens (sign out)."""
        await self.store.delete(user_id)
        logger.info("token deleted for user %s", user_id)

    async def close(self) -> None:
        if self._owns_http and not self.http.is_closed:
            await self.http.aclose()
        await self.state.close()
        if self.store.backend is not self.state:
            await self.store.backend.close()

    def _stale(self, data: TokenData) -> bool:
        return data.expires_within(self.config.token_refresh_buffer_seconds)

    async def _load(self, user_id: str) -> TokenData | None:
        try:
            return await self.store.load(user_id)
        except TokenUnreadable:
            return await self._drop(user_id, "record unreadable with the configured keys")

    async def _drop(self, user_id: str, why: str) -> TokenData | None:
        await self.store.delete(user_id)
        logger.warning("token deleted for user %s: %s; they must sign in again", user_id, why)
        return None


def build_token_manager(config: OAuthConfig, settings: Settings) -> TokenManager:
    """A manager for the running event loop: its own Redis pool and HTTP client, closed by `close()`."""
    cipher = TokenCipher(encryption_keys(config, settings))
    state: RecordBackend
    if settings.dev and config.storage is None and "redis_url" not in settings.model_fields_set:
        logger.warning("DEV MODE without REDIS_URL: tokens kept in process memory, lost on restart, unseen by workers")
        state = MemoryBackend()
    else:
        state = RedisBackend(async_client(settings.redis_url, "tokens"))
    records = KeyValueBackend(config.storage, state) if config.storage is not None else state
    http = config.http_client or httpx.AsyncClient(timeout=10.0)
    ims = ImsClient(http, config.ims_url or settings.ims_url or DEFAULT_IMS_URL, config.client_id, config.client_secret)
    return TokenManager(config, TokenStore(cipher, records), state, ims, http, owns_http=config.http_client is None)


async def run_as_event_user(manager: TokenManager, chain: NextFunc, event: AnyEvent) -> AnyResponse:
    """Run `chain` with the event user's stored token bound for `get_user_token()`, when they signed in.

    Without a stored token the handler still runs and `get_user_token()` raises. An IMS outage
    with an expired token propagates, so a worker retries the task later.
    """
    if current_user_token() is not None or not event.user_id:
        return await chain(event)
    started = time.perf_counter()
    data = await manager.get_token(event.user_id)
    if data is None:
        return await chain(event)
    logger.debug("bound token of user %s in %.1fms", event.user_id, (time.perf_counter() - started) * 1000)
    handle = set_user_token(data.access_token.get_secret_value())
    try:
        return await chain(event)
    finally:
        reset_user_token(handle)
