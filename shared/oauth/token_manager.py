"""`TokenManager`: stored user tokens, refreshed by exactly one process under a per-record Redis lock.

IMS rotates refresh tokens and revokes the used one, so two processes refreshing the same user at
once would log that user out; the lock serialises them and the losers read the winner's new pair.
A token is bound to the account (tenant) whose event asked for the sign-in, and handed out only
for events of that account.
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
from redis.exceptions import RedisError

from shared import redis_keys
from shared.context import current_event_account, current_user_token, reset_user_token, set_user_token
from shared.core.events import AnyEvent
from shared.core.middleware import NextFunc
from shared.core.ui import AnyResponse
from shared.errors import (
    ConfigurationError,
    GrantRejected,
    IdentityProviderUnavailable,
    LockUnavailable,
    TokenExchangeError,
    TokenRefreshError,
    TokenUnreadable,
)
from shared.oauth.config import DEFAULT_IMS_URL, OAuthConfig
from shared.oauth.token_store import (
    KeyValueBackend,
    MemoryBackend,
    RecordBackend,
    RedisBackend,
    StoredToken,
    TokenCipher,
    TokenData,
    TokenStore,
    encryption_keys,
)
from shared.ratelimit.transport import limited_client_options
from shared.redis_client import async_client
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.oauth")

LOCK_TIMEOUT = 30.0
"""A crashed refresher's lock frees itself after this long."""
REFRESH_DEADLINE = 15.0
"""Hard limit on one refresh (re-read, IMS call, write): well inside LOCK_TIMEOUT, so the lock is
never lost while its holder still works and a second process cannot spend the same refresh token."""
IMS_TIMEOUT = 10.0
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
            response = await self._http.post(f"{self._base}/ims/token/v3", data=form, timeout=IMS_TIMEOUT)
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
        dev: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.state = state
        self.ims = ims
        self.http = http
        self._owns_http = owns_http
        self._dev = dev
        self.refresh_deadline = REFRESH_DEADLINE
        # Single-flight inside the process first, so 20 waiters poll one asyncio lock, not Redis.
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def cipher(self) -> TokenCipher:
        return self.store.cipher

    async def get_token(self, user_id: str, *, account_id: str | None = None) -> TokenData | None:
        """The user's tokens for `account_id`, refreshed first when within `token_refresh_buffer_seconds` of expiry.

        A token is bound to the account it was issued for: another account's events never get it.
        Without `account_id`, the account of the event whose handler is running (the reference's
        `get_token(user_id=...)` inside a handler); outside a handler it must be given.
        None when the user has not signed in for that account, IMS rejected the refresh (the record
        is then deleted, unless it was replaced meanwhile), or the record cannot be decrypted (kept:
        a key problem, logged with the key fingerprints). Raises `IdentityProviderUnavailable` only
        when IMS is down and the access token has already expired.
        """
        account_id = _account_for(account_id)
        if not account_id or not user_id:
            return None
        stored = await self._read(account_id, user_id)
        if stored is None or not self._stale(stored.data):
            return stored.data if stored is not None else None
        name = f"{account_id}\n{user_id}"
        lock = self._local.get(name)
        if lock is None:
            lock = self._local[name] = asyncio.Lock()
        async with lock:
            try:
                lock_key = redis_keys.user_token_lock_key(account_id, user_id)
                async with self.state.lock(lock_key, LOCK_TIMEOUT, LOCK_WAIT):
                    return await self._refresh_bounded(stored)
            except LockUnavailable:
                raise IdentityProviderUnavailable("token refresh still running elsewhere") from None

    async def _refresh_bounded(self, before: StoredToken) -> TokenData | None:
        try:
            async with asyncio.timeout(self.refresh_deadline):
                return await self._refresh_locked(before.data.account_id, before.data.user_id)
        except TimeoutError:
            data = before.data
            logger.warning(
                "token refresh for user %s account %s gave up after %.1fs",
                data.user_id,
                data.account_id,
                self.refresh_deadline,
            )
            if not data.expires_within(0):
                return data
            raise IdentityProviderUnavailable("token refresh timed out") from None

    async def _refresh_locked(self, account_id: str, user_id: str) -> TokenData | None:
        stored = await self._read(account_id, user_id)  # another process may have refreshed while we waited
        if stored is None or not self._stale(stored.data):
            return stored.data if stored is not None else None
        data = stored.data
        if data.refresh_token is None:
            return data if not data.expires_within(0) else await self._drop(stored, "expired, no refresh token")
        try:
            payload = await self.ims.refresh(data.refresh_token.get_secret_value())
        except GrantRejected:
            return await self._drop(stored, "refresh rejected by IMS")
        except IdentityProviderUnavailable:
            if not data.expires_within(0):
                logger.warning(
                    "token refresh for user %s account %s failed (IMS unavailable); using the current token",
                    user_id,
                    account_id,
                )
                return data
            raise
        fresh = TokenData.from_ims(payload, user_id, account_id=account_id)
        await self.store.save(fresh)
        logger.info("token refreshed for user %s account %s", user_id, account_id)
        return fresh

    async def store_token(
        self, user_id: str, token: TokenData | Mapping[str, Any], *, account_id: str | None = None
    ) -> TokenData:
        """Store (replace) a user's tokens for `account_id` (default: the running handler's event's
        account): a `TokenData` or an IMS token response."""
        account_id = _account_for(account_id)
        if isinstance(token, TokenData):
            data = token.model_copy(update={"user_id": user_id, "account_id": account_id})
        else:
            data = TokenData.from_ims(token, user_id, account_id=account_id)
        await self.store.save(data)
        return data

    async def delete_token(self, user_id: str, *, account_id: str | None = None) -> None:
        """Forget a user's tokens for `account_id` (default: the running handler's event's account): sign out.

        Outside a handler and without `account_id`, the user's tokens in every account are deleted,
        as v0.0.10's `delete_token(user_id)` forgets the user (it keeps one token per user).
        """
        if account_id is None and current_event_account() is None:
            accounts = await self.store.delete_everywhere(user_id)
            logger.info("token deleted for user %s in every account (%d)", user_id, len(accounts))
            return
        account_id = _account_for(account_id)
        await self.store.delete(account_id, user_id)
        logger.info("token deleted for user %s account %s", user_id, account_id)

    async def check_keys(self) -> None:
        """Raise `EncryptionKeyMismatch` when the configured keys cannot open the key canary.

        An unreachable Redis is logged and skipped: the process starts, and checks again at its next start.
        """
        try:
            await self.store.check_key_canary(dev=self._dev)
        except (RedisError, OSError) as exc:
            logger.warning("could not check the key canary (%s); starting without the check", type(exc).__name__)

    async def close(self) -> None:
        if self._owns_http and not self.http.is_closed:
            await self.http.aclose()
        await self.state.close()
        if self.store.backend is not self.state:
            await self.store.backend.close()

    def _stale(self, data: TokenData) -> bool:
        return data.expires_within(self.config.token_refresh_buffer_seconds)

    async def _read(self, account_id: str, user_id: str) -> StoredToken | None:
        try:
            return await self.store.read(account_id, user_id)
        except TokenUnreadable as exc:
            # Never deleted: a process with a wrong or outdated key must not sign everyone out.
            logger.error(
                "token record of user %s account %s not used: %s; treated as signed out, record kept",
                user_id,
                account_id,
                exc,
            )
            return None

    async def _drop(self, stored: StoredToken, why: str) -> TokenData | None:
        data = stored.data
        if await self.store.delete_if_unchanged(stored):
            logger.warning(
                "token deleted for user %s account %s: %s; they must sign in again", data.user_id, data.account_id, why
            )
            return None
        logger.info("token record of user %s account %s was replaced meanwhile; kept", data.user_id, data.account_id)
        current = await self._read(data.account_id, data.user_id)
        return current.data if current is not None and not current.data.expires_within(0) else None


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
    # Its Frame.io calls (sign-in's GET /v4/me, the install admin API) spend the shared rate budget;
    # IMS's are not Frame.io API paths and pass the limiter untouched.
    http = config.http_client or httpx.AsyncClient(timeout=10.0, **limited_client_options())
    ims = ImsClient(http, config.ims_url or settings.ims_url or DEFAULT_IMS_URL, config.client_id, config.client_secret)
    return TokenManager(
        config, TokenStore(cipher, records), state, ims, http, owns_http=config.http_client is None, dev=settings.dev
    )


def check_keys_at_start_up(config: OAuthConfig | None, settings: Settings) -> None:
    """Refuse to start (`EncryptionKeyMismatch`) when the keys cannot open the key canary: for the
    CLI and worker start-up, outside any event loop, before the process serves anything."""
    if config is None:
        return

    async def check() -> None:
        manager = build_token_manager(config, settings)
        try:
            await manager.check_keys()
        finally:
            await manager.close()

    asyncio.run(check())


def _account_for(account_id: str | None) -> str:
    """The tenant a token call is for: the one given, else the running handler's event's account."""
    account = account_id if account_id is not None else current_event_account()
    if account is None:
        raise ConfigurationError(
            "tokens are bound to the account they were issued for: pass account_id=... outside an event handler"
        )
    return account


async def run_as_event_user(manager: TokenManager, chain: NextFunc, event: AnyEvent) -> AnyResponse:
    """Run `chain` with the event user's stored token bound for `get_user_token()`, when they signed in
    from an event of the same account (the tenant the token was issued for).

    Without a stored token the handler still runs and `get_user_token()` raises. An IMS outage
    with an expired token propagates, so a worker retries the task later.
    """
    if current_user_token() is not None or not event.user_id or not event.account_id:
        return await chain(event)
    started = time.perf_counter()
    data = await manager.get_token(event.user_id, account_id=event.account_id)
    if data is None:
        return await chain(event)
    logger.debug("bound token of user %s in %.1fms", event.user_id, (time.perf_counter() - started) * 1000)
    handle = set_user_token(data.access_token.get_secret_value())
    try:
        return await chain(event)
    finally:
        reset_user_token(handle)
