"""Adobe sign-in on the ingress: the `require_user_auth` gate and GET /auth/login, GET /auth/callback.

The login link in the sign-in Form is signed and expires, binding the Frame.io user and the
interaction, so nobody can make the callback store a token under someone else's user id. The
callback then checks with GET /v4/me that whoever signed in *is* that user before storing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson
from frameio.core.api_error import ApiError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared import redis_keys
from shared.core.client import Client
from shared.core.events import ActionEvent
from shared.core.registry import HandlerSpec, Registry
from shared.core.ui import AnyResponse, Form, LinkField, Message
from shared.errors import GrantRejected, IdentityProviderUnavailable, RequestRejected, TokenUnreadable
from shared.oauth.config import reset_user_token, set_user_token
from shared.oauth.token_manager import TokenManager

logger = logging.getLogger("frameio_kit.oauth")

LOGIN_LINK_TTL = 900
"""Seconds a sign-in link stays valid; the user runs the action again for a new one."""
STATE_TTL = 600
"""Seconds between leaving for Adobe and coming back to /auth/callback."""


class SignInRejected(RequestRejected):
    """A refused sign-in step; `public_message` is shown (escaped) on the error page."""


@dataclass(frozen=True)
class LoginClaims:
    user_id: str
    interaction_id: str
    expires_at: int


# -- the gate ---------------------------------------------------------------------------------


async def answer_as_user(app: Registry, spec: HandlerSpec, event: ActionEvent) -> AnyResponse:
    """Run an action handler; with `require_user_auth`, only for a signed-in user, their token bound.

    No token, a refresh IMS rejected, an undecryptable record or IMS down: the sign-in Form instead.
    """
    if not spec.require_user_auth or app.oauth is None:
        return await app.run(spec, event)
    if not event.user_id:
        return Message(title="Sign-in needed", description="This action needs a Frame.io user; none was sent.")
    manager = app.token_manager
    try:
        data = await manager.get_token(event.user_id)
    except IdentityProviderUnavailable:
        logger.warning("token refresh for user %s failed: IMS unavailable; asking to sign in", event.user_id)
        data = None
    if data is None:
        await manager.state.set(
            redis_keys.oauth_pending_action_key(event.interaction_id),
            manager.cipher.encrypt(event.model_dump_json().encode("utf-8")),
            LOGIN_LINK_TTL,
        )
        logger.info("sign-in asked of user %s interaction=%s", event.user_id, event.interaction_id)
        return sign_in_form(login_link(manager, event.user_id, event.interaction_id))
    handle = set_user_token(data.access_token.get_secret_value())
    try:
        return await app.run(spec, event)
    finally:
        reset_user_token(handle)


def sign_in_form(url: str) -> Form:
    return Form(
        title="Sign in with Adobe",
        description="This action works on your behalf. Open the link to sign in once, then run the action again.",
        fields=[LinkField(label="Sign-in link", name="frameio_kit_login", value=url)],
    )


# -- signed login links -------------------------------------------------------------------------


def login_link(manager: TokenManager, user_id: str, interaction_id: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + LOGIN_LINK_TTL)
    token = sign_login_token(manager.cipher.signing_keys[0], user_id, interaction_id, expires)
    return f"{manager.config.base_url.rstrip('/')}/auth/login?{urlencode({'t': token})}"


def sign_login_token(key: bytes, user_id: str, interaction_id: str, expires_at: int) -> str:
    body = _b64(orjson.dumps({"u": user_id, "i": interaction_id, "e": expires_at}))
    return f"{body}.{_b64(hmac.new(key, body.encode('ascii'), hashlib.sha256).digest())}"


def verify_login_token(keys: list[bytes], token: str, now: float | None = None) -> LoginClaims:
    body, _, signature = token.partition(".")
    if not body or not signature or len(token) > 2048:
        raise SignInRejected("This sign-in link is malformed.", status_code=400)
    if not any(
        hmac.compare_digest(_b64(hmac.new(k, body.encode("ascii", "replace"), hashlib.sha256).digest()), signature)
        for k in keys
    ):
        raise SignInRejected("This sign-in link is not valid.", status_code=403)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        result = LoginClaims(str(claims["u"]), str(claims["i"]), int(claims["e"]))
    except (ValueError, KeyError, TypeError):
        raise SignInRejected("This sign-in link is malformed.", status_code=400) from None
    if result.expires_at < (time.time() if now is None else now):
        raise SignInRejected("This sign-in link has expired. Run the action again for a new one.", status_code=410)
    return result


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


# -- routes ---------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """GET /auth/login?t=...: check the signed link, remember PKCE and state, send the user to Adobe."""
    try:
        manager = _manager(request)
        claims = verify_login_token(manager.cipher.signing_keys, request.query_params.get("t", ""))
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        record = {"u": claims.user_id, "i": claims.interaction_id, "v": verifier}
        await manager.state.set(
            redis_keys.oauth_state_key(_digest(state)), manager.cipher.encrypt(orjson.dumps(record)), STATE_TTL
        )
    except SignInRejected as exc:
        return _error_page(exc, "login")
    logger.info("sign-in started for user %s interaction=%s", claims.user_id, claims.interaction_id)
    url = manager.ims.authorize_url(
        redirect_uri=manager.config.redirect_uri, scopes=manager.config.scopes, state=state, code_challenge=challenge
    )
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


async def callback(request: Request) -> Response:
    """GET /auth/callback?code&state: exchange the code, confirm the identity, store the token."""
    app: Registry = request.app.state.kit.app
    try:
        manager = _manager(request)
        user_id, interaction_id, payload = await _complete_sign_in(manager, request)
    except SignInRejected as exc:
        return _error_page(exc, "callback")
    data = await manager.store_token(user_id, payload)
    logger.info("signed in user %s interaction=%s", user_id, interaction_id)
    await _resume(app, manager, interaction_id, data.access_token.get_secret_value())
    return _page("Signed in", "You are signed in with Adobe. Return to Frame.io and run the action again.", 200)


async def _complete_sign_in(manager: TokenManager, request: Request) -> tuple[str, str, dict[str, object]]:
    params = request.query_params
    if params.get("error"):
        raise SignInRejected(f"Adobe sign-in did not complete ({params.get('error', '')[:100]}).")
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        raise SignInRejected("The sign-in answer is missing its code or state.")
    sealed = await manager.state.take(redis_keys.oauth_state_key(_digest(state)))
    if sealed is None:
        raise SignInRejected("This sign-in has expired or was already used. Run the action again.")
    try:
        record = orjson.loads(manager.cipher.decrypt(sealed))
    except (TokenUnreadable, orjson.JSONDecodeError):
        raise SignInRejected("This sign-in can no longer be completed. Run the action again.") from None
    try:
        payload = await manager.ims.exchange_code(code, record["v"], manager.config.redirect_uri)
    except GrantRejected:
        raise SignInRejected("Adobe did not accept this sign-in. Run the action again.") from None
    except IdentityProviderUnavailable:
        raise SignInRejected("Adobe sign-in is unavailable right now. Try again shortly.", status_code=502) from None
    identity = await _frameio_user_id(manager, str(payload["access_token"]))
    if identity != record["u"]:
        logger.warning("sign-in refused: identity mismatch for user %s interaction=%s", record["u"], record["i"])
        raise SignInRejected(
            "You signed in as a different Frame.io user than the one who ran the action.", status_code=403
        )
    return str(record["u"]), str(record["i"]), payload


async def _frameio_user_id(manager: TokenManager, access_token: str) -> str:
    client = Client(token=access_token, httpx_client=manager.http)
    try:
        profile = await client.users.show(request_options={"max_retries": 1, "timeout_in_seconds": 10})
    except ApiError as exc:
        status = exc.status_code or 502
        raise SignInRejected(
            "Frame.io did not confirm who signed in.",
            status_code=403 if status < 500 else 502,
        ) from None
    except Exception:
        logger.warning("GET /v4/me failed during sign-in", exc_info=True)
        raise SignInRejected("Frame.io could not be reached to confirm who signed in.", status_code=502) from None
    return str(profile.data.id)


async def _resume(app: Registry, manager: TokenManager, interaction_id: str, access_token: str) -> None:
    sealed = await manager.state.take(redis_keys.oauth_pending_action_key(interaction_id))
    callback = manager.config.on_auth_complete
    if sealed is None or callback is None:
        return
    handle = set_user_token(access_token)
    try:
        event = ActionEvent.model_validate_json(manager.cipher.decrypt(sealed))
        await callback(event)
        logger.info("on_auth_complete done for %s interaction=%s", event.type, interaction_id)
    except Exception:
        logger.exception("on_auth_complete failed for interaction=%s", interaction_id)
    finally:
        reset_user_token(handle)


def _manager(request: Request) -> TokenManager:
    app: Registry = request.app.state.kit.app
    if app.oauth is None:
        raise SignInRejected("Sign-in is not configured for this integration.", status_code=404)
    return app.token_manager


def _error_page(exc: SignInRejected, step: str) -> Response:
    logger.info("sign-in %s refused (%d): %r", step, exc.status_code, exc.public_message)  # %r: no forged lines
    return _page("Sign-in failed", exc.public_message, exc.status_code)


def _page(title: str, message: str, status: int) -> Response:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
