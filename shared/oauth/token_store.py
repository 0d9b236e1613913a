"""Encrypted token records: Fernet/MultiFernet at rest in Redis (shared), a py-key-value store or memory (dev).

A record holds one user's access and refresh token together, so a rotated pair is always written
in one operation; it expires with the refresh token, not the access token. Records are keyed by
the account (tenant) the token was issued for and the user, and carry both inside the seal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, Field, SecretStr
from redis.asyncio import Redis

from shared import redis_keys
from shared.errors import EncryptionKeyMismatch, LockUnavailable, TokenUnreadable
from shared.hmac_sign import hmac_sha256
from shared.oauth.config import OAuthConfig
from shared.redis_lock import redis_lock
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.oauth")

REFRESH_TOKEN_LIFETIME = 14 * 86400
"""IMS refresh tokens live 14 days unless the token response says otherwise."""
DEFAULT_ACCESS_LIFETIME = 86400
KEY_VALUE_COLLECTION = "frameio-kit-tokens"
CANARY_PLAINTEXT = b"frameio-kit key canary v1"

_COMPARE_AND_DELETE = resources.files("shared.oauth").joinpath("compare_and_delete.lua").read_text(encoding="utf-8")

_dev_key: str | None = None
# Adding an account to a user's index is a read and a write: the lock is held for milliseconds.
_INDEX_LOCK_TIMEOUT = 5.0
_INDEX_LOCK_WAIT = 5.0


def key_fingerprint(key: str) -> str:
    """First 8 hex digits of the key's SHA-256: names a key in logs and errors without revealing it."""
    return hashlib.sha256(key.strip().encode("ascii", "replace")).hexdigest()[:8]


class TokenData(BaseModel):
    """One user's tokens. `SecretStr` keeps them out of reprs and logs."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: float
    refresh_expires_at: float
    scopes: list[str] = Field(default_factory=list)
    user_id: str = ""
    account_id: str = ""

    @classmethod
    def from_ims(
        cls, payload: Mapping[str, Any], user_id: str, now: float | None = None, *, account_id: str = ""
    ) -> TokenData:
        """Build from an IMS token response; trusts `expires_in` (seconds), as Adobe advises."""
        now = time.time() if now is None else now
        expires_in = _seconds(payload.get("expires_in"), DEFAULT_ACCESS_LIFETIME)
        refresh_in = _seconds(payload.get("refresh_token_expires_in"), REFRESH_TOKEN_LIFETIME)
        refresh = payload.get("refresh_token")
        scope = payload.get("scope")
        return cls(
            access_token=SecretStr(str(payload["access_token"])),
            refresh_token=SecretStr(str(refresh)) if refresh else None,
            expires_at=now + expires_in,
            refresh_expires_at=now + (refresh_in if refresh else expires_in),
            scopes=[s for s in str(scope).replace(",", " ").split() if s] if scope else [],
            user_id=user_id,
            account_id=account_id,
        )

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - seconds <= (time.time() if now is None else now)


def _seconds(value: Any, default: int) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return float(default)
    return seconds if seconds > 0 else float(default)


class TokenCipher:
    """MultiFernet over the configured keys: the first encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("no encryption key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ValueError(
                    f"encryption key #{position} is not a Fernet key (32 url-safe base64 bytes); generate one with "
                    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._first = fernets[0]
        self.fingerprints = [key_fingerprint(k) for k in keys]
        # Login links are signed with keys derived from the same secrets, so one setting rotates both.
        self.signing_keys = [hmac_sha256(base64.urlsafe_b64decode(k.strip()), b"frameio-kit login link") for k in keys]

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(sealed)
        except InvalidToken:
            raise TokenUnreadable(
                f"no configured encryption key (fingerprints {', '.join(self.fingerprints)}) decrypts this record"
            ) from None

    def sealed_with_first_key(self, sealed: bytes) -> bool:
        try:
            self._first.decrypt(sealed)
        except InvalidToken:
            return False
        return True


def encryption_keys(config: OAuthConfig, settings: Settings) -> list[str]:
    """The keys, first one encrypting: `OAuthConfig.encryption_key`, else FRAMEIO_KIT_ENCRYPTION_KEYS.

    Outside dev mode no key is a start-up error: a throwaway key would make every stored token
    unreadable at the next restart and differ between ingress and workers.
    """
    raw = config.encryption_key or (settings.encryption_keys.get_secret_value() if settings.encryption_keys else "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if keys:
        TokenCipher(keys)  # validates every key now, at start-up
        return keys
    if not settings.dev:
        raise ValueError(
            "OAuth needs an encryption key for stored tokens: set FRAMEIO_KIT_ENCRYPTION_KEYS (comma separated "
            "Fernet keys, the first encrypts) or OAuthConfig(encryption_key=...)"
        )
    global _dev_key
    if _dev_key is None:
        _dev_key = Fernet.generate_key().decode("ascii")
        logger.warning("DEV MODE: generated a throwaway token encryption key; stored tokens die with this process")
    return [_dev_key]


class RecordBackend(Protocol):
    """Where sealed bytes live; `take` and `lock` serve sign-in state and refresh locks."""

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int | None) -> None:
        """`ttl` None: no expiry."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl: int | None) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def delete_if_unchanged(self, key: str, expected: bytes) -> bool:
        """Delete `key` only while it still holds `expected`; True if it did."""
        ...

    async def take(self, key: str) -> bytes | None: ...
    async def count(self, key: str, ttl: int) -> int:
        """Increment a counter that expires `ttl` seconds after its first increment; the new value."""
        ...

    def lock(self, key: str, timeout: float, wait: float) -> AbstractAsyncContextManager[None]: ...
    async def close(self) -> None: ...


class RedisBackend:
    """The shared default: ingress and every worker see the same records and locks."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)

    async def get(self, key: str) -> bytes | None:
        return _as_bytes(await self.redis.get(key))

    async def set(self, key: str, value: bytes, ttl: int | None) -> None:
        await self.redis.set(key, value, ex=None if ttl is None else max(1, ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: int | None) -> bool:
        return bool(await self.redis.set(key, value, ex=None if ttl is None else max(1, ttl), nx=True))

    async def delete(self, key: str) -> None:
        await self.redis.delete(key)

    async def delete_if_unchanged(self, key: str, expected: bytes) -> bool:
        return bool(await self._compare_and_delete(keys=[key], args=[expected]))

    async def take(self, key: str) -> bytes | None:
        return _as_bytes(await self.redis.getdel(key))  # atomic: a replayed state finds nothing

    async def count(self, key: str, ttl: int) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, max(1, ttl), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    def lock(self, key: str, timeout: float, wait: float) -> AbstractAsyncContextManager[None]:
        return redis_lock(self.redis, key, timeout=timeout, wait=wait, busy=f"lock {key} busy")

    async def close(self) -> None:
        await self.redis.aclose()


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value


class MemoryBackend:
    """Dev mode only: process-local, lost on restart, invisible to worker processes."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> bytes | None:
        value = self._data.get(key)
        if value is None or value[1] <= time.monotonic():
            self._data.pop(key, None)
            return None
        return value[0]

    async def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self._data[key] = (value, float("inf") if ttl is None else time.monotonic() + max(1, ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: int | None) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def delete_if_unchanged(self, key: str, expected: bytes) -> bool:
        if await self.get(key) != expected:
            return False
        self._data.pop(key, None)
        return True

    async def take(self, key: str) -> bytes | None:
        value = await self.get(key)
        self._data.pop(key, None)
        return value

    async def count(self, key: str, ttl: int) -> int:
        current = await self.get(key)
        value = int(current or b"0") + 1
        expires = self._data[key][1] if current is not None else time.monotonic() + max(1, ttl)
        self._data[key] = (str(value).encode(), expires)
        return value

    @asynccontextmanager
    async def lock(self, key: str, timeout: float, wait: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with asyncio.timeout(wait):
                await lock.acquire()
        except TimeoutError:
            raise LockUnavailable(f"lock {key} busy") from None
        try:
            yield
        finally:
            lock.release()

    async def close(self) -> None:
        self._data.clear()


class KeyValueBackend:
    """Compatibility with `OAuthConfig(storage=...)`: any py-key-value `AsyncKeyValue`.

    Only token records go there (sealed, as `{"sealed": "..."}`); sign-in state and refresh locks
    stay in Redis, which the store protocol cannot do atomically.
    """

    def __init__(self, storage: Any, locks: RecordBackend) -> None:
        for method in ("get", "put", "delete"):
            if not callable(getattr(storage, method, None)):
                raise TypeError(f"OAuthConfig.storage must be a py-key-value AsyncKeyValue (no .{method}())")
        self._storage = storage
        self._locks = locks

    async def get(self, key: str) -> bytes | None:
        entry = await self._storage.get(key, collection=KEY_VALUE_COLLECTION)
        sealed = entry.get("sealed") if isinstance(entry, Mapping) else None
        return sealed.encode("ascii") if isinstance(sealed, str) else None

    async def set(self, key: str, value: bytes, ttl: int | None) -> None:
        await self._storage.put(
            key,
            {"sealed": value.decode("ascii")},
            collection=KEY_VALUE_COLLECTION,
            ttl=None if ttl is None else max(1, ttl),
        )

    async def set_if_absent(self, key: str, value: bytes, ttl: int | None) -> bool:
        # Not atomic over the store protocol; only the key canary uses it here, where a lost race is harmless.
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        await self._storage.delete(key, collection=KEY_VALUE_COLLECTION)

    async def delete_if_unchanged(self, key: str, expected: bytes) -> bool:
        # Read-compare-delete: not atomic over the store protocol, but callers hold the record's refresh lock.
        if await self.get(key) != expected:
            return False
        await self.delete(key)
        return True

    async def take(self, key: str) -> bytes | None:
        return await self._locks.take(key)

    async def count(self, key: str, ttl: int) -> int:
        return await self._locks.count(key, ttl)

    def lock(self, key: str, timeout: float, wait: float) -> AbstractAsyncContextManager[None]:
        return self._locks.lock(key, timeout, wait)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class StoredToken:
    """A record as loaded: the tokens and the exact sealed bytes, for compare-and-delete."""

    data: TokenData
    sealed: bytes


class TokenStore:
    """Seals and unseals `TokenData` per (account, user): a token is bound to the tenant it was issued for."""

    def __init__(self, cipher: TokenCipher, backend: RecordBackend) -> None:
        self.cipher = cipher
        self.backend = backend

    async def read(self, account_id: str, user_id: str) -> StoredToken | None:
        """The record, None when absent; raises `TokenUnreadable` when it cannot be opened or names
        another tenant or user than its key (never trusted, never deleted here)."""
        sealed = await self.backend.get(redis_keys.user_token_key(account_id, user_id))
        if sealed is None:
            return None
        raw = self.cipher.decrypt(sealed)
        try:
            data = TokenData.model_validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError):
            raise TokenUnreadable("stored record does not parse") from None
        if data.account_id != account_id or data.user_id != user_id:
            raise TokenUnreadable("stored record belongs to another account or user than its key")
        return StoredToken(data, sealed)

    async def load(self, account_id: str, user_id: str) -> TokenData | None:
        stored = await self.read(account_id, user_id)
        return stored.data if stored is not None else None

    async def save(self, data: TokenData) -> None:
        """One write of the whole record under its account and user, sealed with the first key,
        expiring with the refresh token."""
        if not data.account_id or not data.user_id:
            raise ValueError("a token record needs the account id and user id it was issued for")
        record = data.model_dump(mode="json")
        record["access_token"] = data.access_token.get_secret_value()
        record["refresh_token"] = data.refresh_token.get_secret_value() if data.refresh_token else None
        ttl = int(data.refresh_expires_at - time.time())
        key = redis_keys.user_token_key(data.account_id, data.user_id)
        await self._index(data.user_id, data.account_id, data.refresh_expires_at)
        await self.backend.set(key, self.cipher.encrypt(orjson.dumps(record)), ttl)

    async def delete(self, account_id: str, user_id: str) -> None:
        await self.backend.delete(redis_keys.user_token_key(account_id, user_id))

    async def delete_everywhere(self, user_id: str) -> list[str]:
        """Delete the user's records in every account they signed in to; the accounts, for logs."""
        accounts = sorted(await self._accounts(user_id))
        for account_id in accounts:
            await self.delete(account_id, user_id)
        await self.backend.delete(redis_keys.user_token_accounts_key(user_id))
        return accounts

    async def _accounts(self, user_id: str) -> dict[str, float]:
        """Account id -> when its record expires at the latest, from the user's sealed index."""
        sealed = await self.backend.get(redis_keys.user_token_accounts_key(user_id))
        if sealed is None:
            return {}
        try:
            entries = orjson.loads(self.cipher.decrypt(sealed))
        except (TokenUnreadable, orjson.JSONDecodeError):
            logger.warning("token account index of user %s unreadable; starting a new one", user_id)
            return {}
        if not isinstance(entries, dict):
            return {}
        return {str(a): float(t) for a, t in entries.items() if isinstance(t, int | float)}

    async def _index(self, user_id: str, account_id: str, expires_at: float) -> None:
        """Record that the user holds a record in `account_id`. A refresh, whose account is already
        indexed until at least as late, costs one read; adding an account holds the index's lock."""
        known = await self._accounts(user_id)
        if known.get(account_id, 0.0) >= expires_at:
            return
        lock_key = redis_keys.user_token_accounts_lock_key(user_id)
        async with self.backend.lock(lock_key, _INDEX_LOCK_TIMEOUT, _INDEX_LOCK_WAIT):
            now = time.time()
            known = {a: t for a, t in (await self._accounts(user_id)).items() if t > now}
            known[account_id] = max(known.get(account_id, 0.0), expires_at)
            sealed = self.cipher.encrypt(orjson.dumps(known))
            await self.backend.set(redis_keys.user_token_accounts_key(user_id), sealed, int(max(known.values()) - now))

    async def delete_if_unchanged(self, stored: StoredToken) -> bool:
        """Delete the record only if it still is `stored`: one replaced since it was loaded survives."""
        key = redis_keys.user_token_key(stored.data.account_id, stored.data.user_id)
        return await self.backend.delete_if_unchanged(key, stored.sealed)

    async def check_key_canary(self, *, dev: bool = False) -> None:
        """Refuse to run with keys that cannot read what the other processes wrote.

        The canary is written with the first key when absent. One that only a later key opens is
        sealed again with the first, so the old key can be dropped once every process has it first.
        In dev mode (throwaway keys by design) a mismatch is logged and the canary replaced.
        """
        key = redis_keys.key_canary_key()
        sealed = await self.backend.get(key)
        if sealed is None:
            if await self.backend.set_if_absent(key, self.cipher.encrypt(CANARY_PLAINTEXT), None):
                logger.info("key canary written with key %s", self.cipher.fingerprints[0])
                return
            sealed = await self.backend.get(key)
            if sealed is None:
                return
        try:
            opened = self.cipher.decrypt(sealed) == CANARY_PLAINTEXT
        except TokenUnreadable:
            opened = False
        if not opened and dev:
            logger.warning(
                "DEV MODE: no configured key opens the key canary; tokens stored earlier are unreadable, "
                "replacing the canary with key %s",
                self.cipher.fingerprints[0],
            )
        elif not opened:
            raise EncryptionKeyMismatch(
                "FRAMEIO_KIT_ENCRYPTION_KEYS (or OAuthConfig(encryption_key=...)) does not match the key the stored "
                "tokens are sealed with: none of the configured keys (fingerprints "
                f"{', '.join(self.cipher.fingerprints)}) opens the key canary {key}. Give this process the same keys "
                "as the others; to change keys follow the rotation order in docs/oauth.md"
            )
        if not self.cipher.sealed_with_first_key(sealed):
            await self.backend.set(key, self.cipher.encrypt(CANARY_PLAINTEXT), None)
            logger.info("key canary sealed again with the first key %s", self.cipher.fingerprints[0])
