"""Install-page sessions: a signed cookie naming a server-side session sealed in Redis.

The cookie holds only a random id and its HMAC (FRAMEIO_KIT_SESSION_SECRET), is HttpOnly,
SameSite=Lax and Secure under https; the admin's Frame.io token stays in Redis, sealed with the
token store's keys. Each session has a CSRF token every POST form must echo.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared import redis_keys
from shared.errors import TokenUnreadable
from shared.hmac_sign import hmac_b64url, same
from shared.oauth.token_store import TokenCipher
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.install")

SESSION_COOKIE = "frameio_kit_install"
STATE_COOKIE = "frameio_kit_install_state"
STATE_TTL = 600

_dev_secret: bytes | None = None


def session_key(settings: Settings) -> bytes:
    """The cookie signing key; in dev mode without one, a per-process random key (said loudly)."""
    global _dev_secret
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value().encode()
        return hashlib.sha256(b"frameio-kit install session\n" + secret).digest()
    if not settings.dev:
        raise RuntimeError("FRAMEIO_KIT_SESSION_SECRET is not set")
    if _dev_secret is None:
        _dev_secret = secrets.token_bytes(32)
        logger.warning("DEV MODE: install sessions signed with a throwaway key; they end with this process")
    return _dev_secret


def sign(key: bytes, value: str) -> str:
    return f"{value}.{hmac_b64url(key, value.encode('ascii'))}"


def unsign(key: bytes, signed: str | None) -> str | None:
    if not signed or len(signed) > 512 or not signed.isascii():
        return None
    value, _, _mac = signed.rpartition(".")
    return value if value and same(sign(key, value), signed) else None


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InstallSession:
    """A signed-in admin: their Frame.io user id and token, and the session's CSRF token."""

    session_id: str
    user_id: str
    access_token: str
    csrf: str

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and same(self.csrf.encode(), str(sent).encode())


class SessionStore:
    """Sessions and pending sign-ins in Redis, sealed; cookies set with the right attributes."""

    def __init__(self, redis: object, cipher: TokenCipher, key: bytes, ttl: int) -> None:
        self._redis = redis
        self._cipher = cipher
        self._key = key
        self.ttl = ttl

    async def load(self, request: Request) -> InstallSession | None:
        session_id = unsign(self._key, request.cookies.get(SESSION_COOKIE))
        if session_id is None:
            return None
        sealed = await self._redis.get(redis_keys.install_session_key(digest(session_id)))  # type: ignore[attr-defined]
        if sealed is None:
            return None
        try:
            data = orjson.loads(self._cipher.decrypt(sealed))
            return InstallSession(session_id, str(data["u"]), str(data["t"]), str(data["c"]))
        except (TokenUnreadable, ValueError, KeyError):
            return None

    async def create(self, response: Response, request: Request, user_id: str, access_token: str, path: str) -> None:
        session_id = secrets.token_urlsafe(32)
        record = orjson.dumps({"u": user_id, "t": access_token, "c": secrets.token_urlsafe(32)})
        await self._redis.set(  # type: ignore[attr-defined]
            redis_keys.install_session_key(digest(session_id)), self._cipher.encrypt(record), ex=self.ttl
        )
        self._cookie(response, request, SESSION_COOKIE, sign(self._key, session_id), self.ttl, path)

    async def end(self, session: InstallSession, response: Response, path: str) -> None:
        await self._redis.delete(redis_keys.install_session_key(digest(session.session_id)))  # type: ignore[attr-defined]
        response.delete_cookie(SESSION_COOKIE, path=path)

    async def begin_sign_in(self, response: Response, request: Request, verifier: str, path: str) -> str:
        """A new sign-in's state: its verifier sealed in Redis, the state bound to this browser by a cookie."""
        state = secrets.token_urlsafe(32)
        await self._redis.set(  # type: ignore[attr-defined]
            redis_keys.install_state_key(digest(state)), self._cipher.encrypt(verifier.encode()), ex=STATE_TTL
        )
        self._cookie(response, request, STATE_COOKIE, sign(self._key, digest(state)), STATE_TTL, path)
        return state

    async def finish_sign_in(self, request: Request, state: str) -> str | None:
        """The verifier of `state` if this browser started it; single use."""
        if unsign(self._key, request.cookies.get(STATE_COOKIE)) != digest(state):
            return None
        sealed = await self._redis.getdel(redis_keys.install_state_key(digest(state)))  # type: ignore[attr-defined]
        if sealed is None:
            return None
        try:
            return self._cipher.decrypt(sealed).decode()
        except TokenUnreadable:
            return None

    @staticmethod
    def _cookie(response: Response, request: Request, name: str, value: str, ttl: int, path: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=ttl,
            path=path,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https",
        )
