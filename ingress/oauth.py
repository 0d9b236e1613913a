"""Adobe sign-in on the ingress: the `require_user_auth` gate and GET /auth/login, GET /auth/callback.

The login link in the sign-in Form is signed and expires, binding the account (tenant), the
Frame.io user and the interaction, so nobody can make the callback store a token under someone
else's user id. The callback then checks with GET /v4/me that whoever signed in *is* that user
before storing the token under that account and user. A link starts one pending sign-in: using it
again resumes that one, and sign-ins started per user are rate limited.
"""

from __future__ import annotations

import base64
import hashlib
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

from ingress.public_url import public_url
from shared import redis_keys
from shared.app.registry import AuthCompleteContext, HandlerSpec, Registry
from shared.context import bind_event_account, current_request, reset_event_account, reset_user_token, set_user_token
from shared.core.client import Client
from shared.core.events import ActionEvent
from shared.core.ui import AnyResponse, Form, LinkField, Message
from shared.errors import (
    ConfigurationError,
    GrantRejected,
    IdentityProviderUnavailable,
    RequestRejected,
    TokenUnreadable,
)
from shared.hmac_sign import b64url, hmac_b64url, same
from shared.jobs.redaction import scrubbed_traceback, string_leaves
from shared.oauth.pkce import challenge_for, new_verifier
from shared.oauth.token_manager import TokenManager
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.oauth")

LOGIN_LINK_TTL = 900
"""Seconds a sign-in link stays valid; the user runs the action again for a new one."""
STATE_TTL = 600
"""Seconds between leaving for Adobe and coming back to /auth/callback."""


class SignInRejected(RequestRejected):
    """A refused sign-in step; `public_message` is shown (escaped) on the error page."""


class SignInRateLimited(SignInRejected):
    """Too many sign-ins started for one user of one account in the rate-limit window (429)."""

    status_code = 429

    def __init__(self, public_message: str, *, retry_after: int) -> None:
        super().__init__(public_message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginClaims:
    account_id: str
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
    if not event.user_id or not event.account_id:
        return Message(
            title="Sign-in needed", description="This action needs a Frame.io user and account; none was sent."
        )
    manager = app.token_manager
    try:
        data = await manager.get_token(event.user_id, account_id=event.account_id)
    except IdentityProviderUnavailable:
        logger.warning("token refresh for user %s failed: IMS unavailable; asking to sign in", event.user_id)
        data = None
    if data is None:
        # Keyed by account, user and interaction: another tenant's or user's step cannot replace it.
        await manager.state.set(
            redis_keys.oauth_pending_action_key(event.account_id, event.user_id, event.interaction_id),
            manager.cipher.encrypt(event.model_dump_json().encode("utf-8")),
            LOGIN_LINK_TTL,
        )
        logger.info(
            "sign-in asked of user %s account %s interaction=%s", event.user_id, event.account_id, event.interaction_id
        )
        return sign_in_form(login_link(manager, event.account_id, event.user_id, event.interaction_id))
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


def login_link(
    manager: TokenManager, account_id: str, user_id: str, interaction_id: str, now: float | None = None
) -> str:
    expires = int((time.time() if now is None else now) + LOGIN_LINK_TTL)
    token = sign_login_token(manager.cipher.signing_keys[0], user_id, interaction_id, expires, account_id=account_id)
    request = current_request()
    return (
        f"{public_url(configured_base(manager.config.base_url, request), request)}/auth/login?{urlencode({'t': token})}"
    )


def redirect_uri(manager: TokenManager, request: Request) -> str:
    """The callback Adobe sends the user back to: `redirect_url`, else `{base_url}{prefix}/auth/callback`,
    where base_url defaults to the request's own origin (frameio-kit 0.0.10 configs name neither)."""
    if manager.config.redirect_url:
        return manager.config.redirect_url
    return f"{public_url(configured_base(manager.config.base_url, request), request)}/auth/callback"


def configured_base(base_url: str | None, request: Request | None) -> str:
    """`base_url` when configured, else the scheme and Host the request came in on (no path: `public_url`
    adds the mount prefix). IMS only sends users back to callbacks registered in Adobe's console, so a
    forged Host cannot redirect a sign-in elsewhere; configure `base_url` to pin links anyway."""
    if base_url:
        return base_url
    if request is None:
        raise ConfigurationError("OAuthConfig(base_url=...) is needed to build sign-in links outside a request")
    return f"{request.url.scheme}://{request.url.netloc}"


def sign_login_token(key: bytes, user_id: str, interaction_id: str, expires_at: int, *, account_id: str) -> str:
    body = b64url(orjson.dumps({"a": account_id, "u": user_id, "i": interaction_id, "e": expires_at}))
    return f"{body}.{hmac_b64url(key, body.encode('ascii'))}"


def verify_login_token(keys: list[bytes], token: str, now: float | None = None) -> LoginClaims:
    # A link is base64url and '.': anything else (non-ASCII included) is malformed, answered before any HMAC.
    body, _, signature = token.partition(".")
    if not body or not signature or len(token) > 2048 or not token.isascii():
        raise SignInRejected("This sign-in link is malformed.", status_code=400)
    if not any(same(hmac_b64url(k, body.encode("ascii")), signature) for k in keys):
        raise SignInRejected("This sign-in link is not valid.", status_code=403)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        result = LoginClaims(str(claims["a"]), str(claims["u"]), str(claims["i"]), int(claims["e"]))
    except (ValueError, KeyError, TypeError):
        raise SignInRejected("This sign-in link is malformed.", status_code=400) from None
    if result.expires_at < (time.time() if now is None else now):
        raise SignInRejected("This sign-in link has expired. Run the action again for a new one.", status_code=410)
    return result


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


# -- routes ---------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """GET /auth/login?t=...: check the signed link, start or resume its one sign-in, send the user to Adobe."""
    try:
        manager = _manager(request)
        link = request.query_params.get("t", "")
        claims = verify_login_token(manager.cipher.signing_keys, link)
        await _limit_rate(manager, claims, request.app.state.kit.settings)
        state, challenge, how = await _pending_sign_in(manager, claims, _digest(link))
    except SignInRejected as exc:
        return _error_page(exc, "login")
    logger.info("sign-in %s: user %s account %s", how, claims.user_id, claims.account_id)
    url = manager.ims.authorize_url(
        redirect_uri=redirect_uri(manager, request), scopes=manager.config.scopes, state=state, code_challenge=challenge
    )
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


async def _limit_rate(manager: TokenManager, claims: LoginClaims, settings: Settings) -> None:
    window = settings.login_rate_window
    now = time.time()
    bucket = int(now // window)
    key = redis_keys.oauth_login_rate_key(claims.account_id, claims.user_id, bucket)
    if await manager.state.count(key, window) > settings.login_rate_limit:
        raise SignInRateLimited(
            "Too many sign-in attempts. Wait a few minutes, then open the link again.",
            retry_after=max(1, int((bucket + 1) * window - now)),
        )


async def _pending_sign_in(manager: TokenManager, claims: LoginClaims, link_digest: str) -> tuple[str, str, str]:
    """The state and PKCE challenge of the link's one pending sign-in, created on the link's first use."""
    link_key = redis_keys.oauth_link_key(link_digest)
    # The link record outlives the link, so a link never starts a second sign-in.
    link_ttl = max(1, int(claims.expires_at - time.time())) + 60
    existing = await manager.state.get(link_key)
    if existing is None:
        state, verifier = secrets.token_urlsafe(32), new_verifier()
        challenge = challenge_for(verifier)
        record = {"a": claims.account_id, "u": claims.user_id, "i": claims.interaction_id, "v": verifier}
        state_key = redis_keys.oauth_state_key(_digest(state))
        await manager.state.set(state_key, manager.cipher.encrypt(orjson.dumps(record)), STATE_TTL)
        pending = manager.cipher.encrypt(orjson.dumps({"s": state, "c": challenge}))
        if await manager.state.set_if_absent(link_key, pending, link_ttl):
            return state, challenge, "started"
        await manager.state.delete(state_key)  # a concurrent use of the same link won
        existing = await manager.state.get(link_key)
        if existing is None:
            raise SignInRejected("This sign-in link has expired. Run the action again for a new one.", status_code=410)
    try:
        pending_sign_in = orjson.loads(manager.cipher.decrypt(existing))
        state, challenge = str(pending_sign_in["s"]), str(pending_sign_in["c"])
    except (TokenUnreadable, orjson.JSONDecodeError, KeyError, TypeError):
        raise SignInRejected("This sign-in can no longer be completed. Run the action again.") from None
    if await manager.state.get(redis_keys.oauth_state_key(_digest(state))) is None:
        raise SignInRejected("This sign-in link was already used. Run the action again for a new one.", status_code=410)
    return state, challenge, "resumed"


async def callback(request: Request) -> Response:
    """GET /auth/callback?code&state: exchange the code, confirm the identity, store the token."""
    try:
        manager = _manager(request)
        claims, payload = await _complete_sign_in(manager, request)
    except SignInRejected as exc:
        return _error_page(exc, "callback")
    data = await manager.store_token(claims.user_id, payload, account_id=claims.account_id)
    logger.info("signed in user %s account %s interaction=%s", claims.user_id, claims.account_id, claims.interaction_id)
    custom = await _resume(manager, claims, data.access_token.get_secret_value(), request.app.state.kit.app)
    if custom is not None:
        return custom
    return _page("Signed in", "You are signed in with Adobe. Return to Frame.io and run the action again.", 200)


async def _complete_sign_in(manager: TokenManager, request: Request) -> tuple[LoginClaims, dict[str, object]]:
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
        claims = LoginClaims(str(record["a"]), str(record["u"]), str(record["i"]), 0)
    except (TokenUnreadable, orjson.JSONDecodeError, KeyError, TypeError):
        raise SignInRejected("This sign-in can no longer be completed. Run the action again.") from None
    try:
        payload = await manager.ims.exchange_code(code, record["v"], redirect_uri(manager, request))
    except GrantRejected:
        raise SignInRejected("Adobe did not accept this sign-in. Run the action again.") from None
    except IdentityProviderUnavailable:
        raise SignInRejected("Adobe sign-in is unavailable right now. Try again shortly.", status_code=502) from None
    identity = await _frameio_user_id(manager, str(payload["access_token"]), request.app.state.kit.app.api_url)
    if identity != claims.user_id:
        logger.warning(
            "sign-in refused: identity mismatch for user %s interaction=%s", claims.user_id, claims.interaction_id
        )
        raise SignInRejected(
            "You signed in as a different Frame.io user than the one who ran the action.", status_code=403
        )
    return claims, payload


async def _frameio_user_id(manager: TokenManager, access_token: str, api_url: str | None) -> str:
    client = Client(token=access_token, httpx_client=manager.http, base_url=api_url)
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


async def _resume(manager: TokenManager, claims: LoginClaims, access_token: str, app: Registry) -> Response | None:
    """Run `on_auth_complete` with the action that asked for this sign-in, if it is that user's in
    that account: the action's own (`on_action(..., on_auth_complete=...)`, whose `Response` replaces
    the default page), else `OAuthConfig.on_auth_complete`."""
    pending_key = redis_keys.oauth_pending_action_key(claims.account_id, claims.user_id, claims.interaction_id)
    sealed = await manager.state.take(pending_key)
    if sealed is None:
        return None
    try:
        event = ActionEvent.model_validate_json(manager.cipher.decrypt(sealed))
    except (TokenUnreadable, ValueError):
        logger.warning("on_auth_complete skipped for interaction=%s: pending action unreadable", claims.interaction_id)
        return None
    spec = app.action_handlers.get(event.type)
    per_action = spec.on_auth_complete if spec is not None else None
    callback = manager.config.on_auth_complete
    if per_action is None and callback is None:
        return None
    # Its key names the account and user already; checked again in case a record was written by other means.
    if event.user_id != claims.user_id or event.account_id != claims.account_id:
        logger.warning(
            "on_auth_complete skipped for interaction=%s: the pending action is user %s account %s, "
            "the sign-in user %s account %s",
            claims.interaction_id,
            event.user_id,
            event.account_id,
            claims.user_id,
            claims.account_id,
        )
        return None
    handle = set_user_token(access_token)
    account = bind_event_account(event.account_id or None)
    try:
        result = await per_action(AuthCompleteContext(event)) if per_action is not None else None
        if per_action is None and callback is not None:
            await callback(event)
        logger.info("on_auth_complete done for %s interaction=%s", event.type, claims.interaction_id)
        return result if isinstance(result, Response) else None
    except Exception as exc:
        # The pending event carries the user's answers, which exception text may quote.
        logger.error(
            "on_auth_complete failed for interaction=%s\n%s",
            claims.interaction_id,
            scrubbed_traceback(exc, [*string_leaves(event.data), *string_leaves(event.form_history)]),
        )
        return None
    finally:
        reset_event_account(account)
        reset_user_token(handle)


def _manager(request: Request) -> TokenManager:
    app: Registry = request.app.state.kit.app
    if app.oauth is None:
        raise SignInRejected("Sign-in is not configured for this integration.", status_code=404)
    return app.token_manager


def _error_page(exc: SignInRejected, step: str) -> Response:
    logger.info("sign-in %s refused (%d): %r", step, exc.status_code, exc.public_message)  # %r: no forged lines
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, SignInRateLimited) else {}
    return _page("Sign-in failed", exc.public_message, exc.status_code, headers)


def _page(title: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})
