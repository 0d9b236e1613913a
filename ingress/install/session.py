"""Install-page sessions: a signed cookie naming a server-side session sealed in Redis, and the
pending sign-in carried whole by the browser.

The session cookie holds only a random id and its HMAC (FRAMEIO_KIT_SESSION_SECRET), is HttpOnly,
SameSite=Lax and Secure when the configured base URL is https; the admin's Frame.io token stays in
Redis, sealed with the token store's keys. Each session has a CSRF token every POST form must echo.

A sign-in that has not come back yet stores nothing server-side: its PKCE verifier, the state's
hash and its start time travel in the state cookie, sealed (the verifier stays secret) and signed.
Only a sign-in Adobe completed leaves a marker in Redis, so its callback cannot be replayed.

After a POST the browser is redirected (303); what the redirect announces ("Installed.") travels in
a short-lived signed notice cookie holding a code, never text, read once by the next page.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared import redis_keys
from shared.errors import ConfigurationError, TokenUnreadable
from shared.hmac_sign import hmac_b64url, same
from shared.oauth.token_store import TokenCipher
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.install")

SESSION_COOKIE = "frameio_kit_install"
STATE_COOKIE = "frameio_kit_install_state"
NOTICE_COOKIE = "frameio_kit_install_notice"
NOTICE_TTL = 120
STATE_TTL = 600
STATE_COOKIE_MAX = 1024
"""A sealed verifier, state hash and time come to ~400 characters; anything much longer is not ours."""

_dev_secret: bytes | None = None


MIN_SECRET_CHARS = 32
"""As `frameio_kit.placeholder_secrets`, which refuses a shorter one when the CLI starts a process;
checked again here for an App served another way (`uvicorn myapp:app`, a mount)."""


def session_key(settings: Settings) -> bytes:
    """The cookie signing key; in dev mode without one, a per-process random key (said loudly).
    ConfigurationError for a secret too short to sign with (.env.example's placeholder included)."""
    global _dev_secret
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value()
        if len(secret.strip()) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"FRAMEIO_KIT_SESSION_SECRET is shorter than {MIN_SECRET_CHARS} characters: generate one with "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        return hashlib.sha256(b"frameio-kit install session\n" + secret.encode()).digest()
    if not settings.dev:
        raise RuntimeError("FRAMEIO_KIT_SESSION_SECRET is not set")
    if _dev_secret is None:
        _dev_secret = secrets.token_bytes(32)
        logger.warning("DEV MODE: install sessions signed with a throwaway key; they end with this process")
    return _dev_secret


def sign(key: bytes, value: str) -> str:
    return f"{value}.{hmac_b64url(key, value.encode('ascii'))}"


def unsign(key: bytes, signed: str | None, limit: int = 512) -> str | None:
    if not signed or len(signed) > limit or not signed.isascii():
        return None
    value, _, _mac = signed.rpartition(".")
    return value if value and same(sign(key, value), signed) else None


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InstallSession:
    """A signed-in admin: their Frame.io user id and token, the session's CSRF token, and the name and
    email Frame.io gave at sign-in (what the pages call them; empty when it gave none)."""

    session_id: str
    user_id: str
    access_token: str
    csrf: str
    name: str = ""
    email: str = ""

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and same(self.csrf.encode(), str(sent).encode())


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in this browser started: the verifier for the code exchange, the state it was sent with."""

    state: str
    verifier: str


class SessionStore:
    """Sessions sealed in Redis, pending sign-ins sealed in a cookie; cookies set with the right attributes.

    `secure`: whether the public base URL is https. The Secure flag follows it, never a request
    header a client or a misconfigured proxy chooses (X-Forwarded-Proto).
    """

    def __init__(self, redis: object, cipher: TokenCipher, key: bytes, ttl: int, *, secure: bool) -> None:
        self._redis = redis
        self._cipher = cipher
        self._key = key
        self.ttl = ttl
        self.secure = secure

    async def load(self, request: Request) -> InstallSession | None:
        session_id = unsign(self._key, request.cookies.get(SESSION_COOKIE))
        if session_id is None:
            return None
        sealed = await self._redis.get(redis_keys.install_session_key(digest(session_id)))  # type: ignore[attr-defined]
        if sealed is None:
            return None
        try:
            data = orjson.loads(self._cipher.decrypt(sealed))
            return InstallSession(
                session_id,
                str(data["u"]),
                str(data["t"]),
                str(data["c"]),
                str(data.get("n") or ""),
                str(data.get("e") or ""),
            )
        except (TokenUnreadable, ValueError, KeyError, AttributeError):
            return None

    async def create(
        self, response: Response, user_id: str, access_token: str, path: str, *, name: str = "", email: str = ""
    ) -> None:
        session_id = secrets.token_urlsafe(32)
        record = orjson.dumps(
            {"u": user_id, "t": access_token, "c": secrets.token_urlsafe(32), "n": name[:200], "e": email[:200]}
        )
        await self._redis.set(  # type: ignore[attr-defined]
            redis_keys.install_session_key(digest(session_id)), self._cipher.encrypt(record), ex=self.ttl
        )
        self._cookie(response, SESSION_COOKIE, sign(self._key, session_id), self.ttl, path)

    async def end(self, session: InstallSession, response: Response, path: str) -> None:
        await self._redis.delete(redis_keys.install_session_key(digest(session.session_id)))  # type: ignore[attr-defined]
        self._forget(response, SESSION_COOKIE, path)

    def begin_sign_in(self, response: Response, verifier: str, path: str) -> str:
        """A new sign-in's state. Nothing is stored: the verifier is sealed into the state cookie, which
        also binds the state to this browser (a visitor can start any number of sign-ins for free)."""
        state = secrets.token_urlsafe(32)
        payload = orjson.dumps({"s": digest(state), "v": verifier, "t": int(time.time())})
        sealed = self._cipher.encrypt(payload).decode("ascii").rstrip("=")  # '=' would be quoted in a cookie
        self._cookie(response, STATE_COOKIE, sign(self._key, sealed), STATE_TTL, path)
        return state

    async def pending_sign_in(self, request: Request, state: str) -> PendingSignIn | None:
        """The sign-in `state` names if this browser started it less than STATE_TTL ago and its
        callback has not completed before (replays are refused before Adobe is asked again)."""
        sealed = unsign(self._key, request.cookies.get(STATE_COOKIE), STATE_COOKIE_MAX)
        if sealed is None or len(state) > 256:
            return None
        try:
            data = orjson.loads(self._cipher.decrypt((sealed + "=" * (-len(sealed) % 4)).encode("ascii")))
            state_hash, verifier, started = str(data["s"]), str(data["v"]), int(data["t"])
        except (TokenUnreadable, ValueError, KeyError, TypeError):
            return None
        age = time.time() - started
        if not same(state_hash, digest(state)) or not -60 <= age <= STATE_TTL:
            return None
        if await self._redis.exists(redis_keys.install_state_key(state_hash)):  # type: ignore[attr-defined]
            return None
        return PendingSignIn(state, verifier)

    async def complete_sign_in(self, response: Response, pending: PendingSignIn, path: str) -> bool:
        """Marks the state used (False: a concurrent callback got there first). Written only after
        Adobe accepted the code, so failed or forged callbacks store nothing either."""
        first = await self._redis.set(  # type: ignore[attr-defined]
            redis_keys.install_state_key(digest(pending.state)), b"1", nx=True, ex=STATE_TTL + 60
        )
        self._forget(response, STATE_COOKIE, path)
        return bool(first)

    def set_notice(self, response: Response, code: str, path: str) -> None:
        """What the page a redirect leads to announces: `code` (a key of the pages' NOTICES)."""
        self._cookie(response, NOTICE_COOKIE, f"{code}.{self._notice_mac(code)}", NOTICE_TTL, path)

    def take_notice(self, request: Request) -> str | None:
        """The notice code this browser was sent with its last redirect, if genuine (None otherwise);
        the caller clears the cookie with `clear_notice` so a reload does not repeat it."""
        value = request.cookies.get(NOTICE_COOKIE)
        if not value or len(value) > 128 or not value.isascii():
            return None
        code, _, mac = value.rpartition(".")
        return code if code and same(self._notice_mac(code), mac) else None

    def clear_notice(self, response: Response, path: str) -> None:
        self._forget(response, NOTICE_COOKIE, path)

    def _notice_mac(self, code: str) -> str:
        # Domain-separated from the session cookie's MAC, so one can never stand in for the other.
        return hmac_b64url(self._key, b"install notice\n" + code.encode("ascii"))

    def _cookie(self, response: Response, name: str, value: str, ttl: int, path: str) -> None:
        response.set_cookie(name, value, max_age=ttl, path=path, httponly=True, samesite="lax", secure=self.secure)

    def _forget(self, response: Response, name: str, path: str) -> None:
        response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=self.secure)
