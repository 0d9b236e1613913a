"""The install pages: sign-in with Adobe, account and workspace choice, install, update, rotate,
uninstall. Every account-scoped step checks the allow-list, then, with the signed-in user's own
token, that Frame.io lists that account and workspace for them and names them an admin or owner of
the account, before any record is read or written; every POST checks the session's CSRF token.

An account removed from `allowed_accounts` keeps one way out: its admins may still see its existing
installs and uninstall them (its events are refused meanwhile, see `InstallSecretResolver`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ingress.install import pages
from ingress.install.session import InstallSession, SessionStore, session_key
from ingress.oauth import configured_base
from ingress.public_url import is_https, public_url
from shared.app.registry import Registry
from shared.errors import FrameioApiError, GrantRejected, IdentityProviderUnavailable, InstallFailed, LockUnavailable
from shared.install.api import FrameioAdminApi, is_account_admin
from shared.install.models import compute_diff
from shared.install.operations import Installer
from shared.install.options import InstallOptions
from shared.oauth.pkce import challenge_for, new_verifier
from shared.oauth.token_manager import TokenManager
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.install")

MAX_FORM_BYTES = 64 * 1024


class _PageError(Exception):
    """Ends a page handler with an error page (escaped message, status)."""

    def __init__(self, title: str, text: str, status: int) -> None:
        super().__init__(text)
        self.title, self.text, self.status = title, text, status


@dataclass
class _Ctx:
    app: Registry
    options: InstallOptions
    settings: Settings
    manager: TokenManager
    sessions: SessionStore
    base: str
    """The public URL of this app, prefix included, no trailing slash."""


def install_routes() -> list[Route]:
    return [
        Route("/install", _page(_index), methods=["GET"]),
        Route("/install/login", _page(_login), methods=["GET"]),
        Route("/install/callback", _page(_callback), methods=["GET"]),
        Route("/install/workspaces", _page(_workspaces), methods=["GET"]),
        Route("/install/status", _page(_status), methods=["GET"]),
        Route("/install/execute", _page(_execute), methods=["POST"]),
        Route("/install/rotate", _page(_rotate), methods=["POST"]),
        Route("/install/uninstall", _page(_uninstall), methods=["POST"]),
        Route("/install/logout", _page(_logout), methods=["POST"]),
    ]


def _context(request: Request) -> _Ctx:
    state = request.app.state.kit
    app: Registry = state.app
    options = app.install_options
    if options is None or app.oauth is None:
        raise _PageError("Not found", "Install is not enabled for this integration.", 404)
    manager = app.token_manager
    configured = options.base_url or configured_base(app.oauth.base_url, request)
    if state.install_sessions is None:
        state.install_sessions = SessionStore(
            app.install_store.redis,
            manager.cipher,
            session_key(state.settings),
            options.session_ttl,
            secure=is_https(configured),
        )
    base = public_url(configured, request)
    return _Ctx(app, options, state.settings, manager, state.install_sessions, base)


def _page(handler: Callable[[Request, _Ctx], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            ctx = _context(request)
        except _PageError as exc:
            return Response(exc.text, status_code=exc.status)
        try:
            response: Response = await handler(request, ctx)
            return response
        except _PageError as exc:
            logger.info("install page %s: %d %r", request.url.path, exc.status, exc.text)
            return pages.message(ctx.options, exc.title, exc.text, exc.status, back=f"{ctx.base}/install")
        except FrameioApiError as exc:
            logger.warning("install page %s: Frame.io %s", request.url.path, exc)
            return pages.message(ctx.options, "Frame.io error", f"Frame.io did not answer as expected: {exc}.", 502)
        except LockUnavailable:
            return pages.message(ctx.options, "Busy", "Another change to this workspace is running; try again.", 409)
        except RedisError:
            logger.warning("install page %s: Redis unavailable", request.url.path)
            return pages.message(ctx.options, "Unavailable", "Storage is unavailable; try again shortly.", 503)

    return endpoint


def _api(ctx: _Ctx, session: InstallSession) -> FrameioAdminApi:
    return FrameioAdminApi(session.access_token, ctx.manager.http, ctx.settings.api_url)


async def _session(request: Request, ctx: _Ctx) -> InstallSession:
    session = await ctx.sessions.load(request)
    if session is None:
        raise _PageError("Signed out", "Your session has ended. Sign in again.", 401)
    return session


async def _form(request: Request, session: InstallSession) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise _PageError("Too large", "The form is too large.", 413)
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200))
    except (UnicodeDecodeError, ValueError):
        raise _PageError("Bad form", "The form could not be read.", 400) from None
    if not session.csrf_ok(form.get("csrf")):
        raise _PageError("Expired form", "This form has expired or did not come from this site. Reload the page.", 403)
    return form


async def _check_scope(
    ctx: _Ctx, session: InstallSession, account_id: str, workspace_id: str | None, *, retired_ok: bool = False
) -> bool:
    """The allow-list first, then the user's own view: an account or workspace their token does not
    list, or an account Frame.io does not name them admin or owner of, is refused before any record
    is read or written. Answers whether the account is retired (outside `allowed_accounts`): only
    callers passing `retired_ok` (seeing and removing an existing install) get that far."""
    bad_workspace = workspace_id is not None and (not workspace_id or len(workspace_id) > 200)
    if not account_id or len(account_id) > 200 or bad_workspace:
        raise _PageError("Bad request", "An account and workspace must be chosen.", 400)
    retired = not ctx.options.account_allowed(account_id)
    if retired and not retired_ok:
        logger.warning("install refused: account %s is not in allowed_accounts (user %s)", account_id, session.user_id)
        raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)
    api = _api(ctx, session)
    account = next((a for a in await api.accounts() if str(a.get("id")) == account_id), None)
    if account is None:
        raise _PageError("Not allowed", "Your Adobe account has no access to this Frame.io account.", 403)
    if not is_account_admin(account):
        logger.warning("install refused: user %s is not an admin of account %s", session.user_id, account_id)
        raise _PageError("Not allowed", _NOT_ADMIN, 403)
    if workspace_id is not None and workspace_id not in {str(w.get("id")) for w in await api.workspaces(account_id)}:
        raise _PageError("Not allowed", "Your Adobe account has no access to this workspace.", 403)
    return retired


_NOT_ADMIN = "Only an admin or the owner of this Frame.io account can install, change or remove this integration."
_RETIRED = "This integration no longer serves this account: its existing installs can only be removed."


async def _existing_or_refuse(ctx: _Ctx, account_id: str, workspace_id: str) -> None:
    """A retired account's page or uninstall needs an install to remove; anything else is refused."""
    if await ctx.app.install_store.get(account_id, workspace_id) is None:
        raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)


# -- pages ----------------------------------------------------------------------------------------


async def _index(request: Request, ctx: _Ctx) -> Response:
    session = await ctx.sessions.load(request)
    if session is None:
        return pages.landing(ctx.options, ctx.base, ctx.app.build_manifest())
    items = [
        a
        for a in await _api(ctx, session).accounts()
        if ctx.options.account_allowed(str(a.get("id"))) and is_account_admin(a)
    ]
    return pages.accounts(ctx.options, ctx.base, items, session.csrf)


async def _login(request: Request, ctx: _Ctx) -> Response:
    verifier = new_verifier()
    challenge = challenge_for(verifier)
    response = RedirectResponse("", status_code=302, headers={"Cache-Control": "no-store"})
    state = ctx.sessions.begin_sign_in(response, verifier, _cookie_path(ctx))
    assert ctx.app.oauth is not None  # noqa: S101 - _context checked it
    response.headers["location"] = ctx.manager.ims.authorize_url(
        redirect_uri=f"{ctx.base}/install/callback", scopes=ctx.app.oauth.scopes, state=state, code_challenge=challenge
    )
    return response


async def _callback(request: Request, ctx: _Ctx) -> Response:
    params = request.query_params
    if params.get("error"):
        raise _PageError("Sign-in failed", f"Adobe sign-in did not complete ({params.get('error', '')[:100]}).", 400)
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        raise _PageError("Sign-in failed", "The sign-in answer is missing its code or state.", 400)
    pending = await ctx.sessions.pending_sign_in(request, state)
    if pending is None:
        raise _PageError("Sign-in failed", _STALE_SIGN_IN, 400)
    try:
        payload = await ctx.manager.ims.exchange_code(code, pending.verifier, f"{ctx.base}/install/callback")
    except GrantRejected:
        raise _PageError("Sign-in failed", "Adobe did not accept this sign-in. Sign in again.", 400) from None
    except IdentityProviderUnavailable:
        raise _PageError("Sign-in failed", "Adobe sign-in is unavailable right now. Try again shortly.", 502) from None
    token = str(payload["access_token"])
    user_id = await FrameioAdminApi(token, ctx.manager.http, ctx.settings.api_url).me()
    response = RedirectResponse(f"{ctx.base}/install", status_code=303, headers={"Cache-Control": "no-store"})
    if not await ctx.sessions.complete_sign_in(response, pending, _cookie_path(ctx)):
        raise _PageError("Sign-in failed", _STALE_SIGN_IN, 400)
    await ctx.sessions.create(response, user_id, token, _cookie_path(ctx))
    logger.info("install session started for user %s", user_id)
    return response


_STALE_SIGN_IN = "This sign-in expired, was already used or began in another browser. Sign in again."


async def _workspaces(request: Request, ctx: _Ctx) -> Response:
    session = await _session(request, ctx)
    account_id = request.query_params.get("account_id", "")
    retired = await _check_scope(ctx, session, account_id, None, retired_ok=True)
    items = await _api(ctx, session).workspaces(account_id)
    store = ctx.app.install_store
    installed = {str(w.get("id")) for w in items if await store.get(account_id, str(w.get("id"))) is not None}
    if retired:
        items = [w for w in items if str(w.get("id")) in installed]
        if not items:
            raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)
    return pages.workspaces(ctx.options, ctx.base, account_id, items, installed, retired=retired)


async def _status(
    request: Request,
    ctx: _Ctx,
    notice: str = "",
    account_id: str = "",
    workspace_id: str = "",
    retired: bool = False,
) -> Response:
    session = await _session(request, ctx)
    if not account_id:
        account_id = request.query_params.get("account_id", "")
        workspace_id = request.query_params.get("workspace_id", "")
        retired = await _check_scope(ctx, session, account_id, workspace_id, retired_ok=True)
        if retired:
            await _existing_or_refuse(ctx, account_id, workspace_id)
    record = await ctx.app.install_store.get(account_id, workspace_id)
    manifest = ctx.app.build_manifest()
    diff = compute_diff(manifest, record, _event_url(ctx))
    return pages.status(
        ctx.options,
        ctx.base,
        session.csrf,
        account_id,
        workspace_id,
        record,
        manifest,
        diff,
        notice=notice,
        retired=_RETIRED if retired else "",
    )


async def _execute(request: Request, ctx: _Ctx) -> Response:
    session = await _session(request, ctx)
    form = await _form(request, session)
    account_id, workspace_id = form.get("account_id", ""), form.get("workspace_id", "")
    await _check_scope(ctx, session, account_id, workspace_id)
    installer = _installer(ctx, session)
    existing = await ctx.app.install_store.get(account_id, workspace_id)
    config = _config(ctx, form, existing.config if existing else None)
    try:
        if form.get("op") == "update":
            await installer.update(account_id, workspace_id, _event_url(ctx), config)
            notice = "Updated."
        else:
            await installer.install(account_id, workspace_id, _event_url(ctx), session.user_id, config)
            notice = "Installed."
    except InstallFailed as exc:
        return pages.message(ctx.options, "Install failed", exc.public_message, 502, back=_status_url(ctx, form))
    _invalidate(ctx, account_id, workspace_id)
    return await _status(request, ctx, notice, account_id, workspace_id)


async def _rotate(request: Request, ctx: _Ctx) -> Response:
    return await _change(request, ctx, "rotate", "Rotation failed", "Signing secrets rotated.")


async def _uninstall(request: Request, ctx: _Ctx) -> Response:
    return await _change(request, ctx, "uninstall", "Uninstall failed", "Uninstalled.")


async def _change(
    request: Request, ctx: _Ctx, operation: Literal["rotate", "uninstall"], failed: str, notice: str
) -> Response:
    """A POST that changes an existing install: session, CSRF and scope checks, the operation, and
    the status page (or what failed, with a way back)."""
    session = await _session(request, ctx)
    form = await _form(request, session)
    account_id, workspace_id = form.get("account_id", ""), form.get("workspace_id", "")
    retired = await _check_scope(ctx, session, account_id, workspace_id, retired_ok=operation == "uninstall")
    if retired:
        await _existing_or_refuse(ctx, account_id, workspace_id)
    installer = _installer(ctx, session)
    change = installer.rotate if operation == "rotate" else installer.uninstall
    try:
        await change(account_id, workspace_id, _event_url(ctx))
    except InstallFailed as exc:
        return pages.message(ctx.options, failed, exc.public_message, 502, back=_status_url(ctx, form))
    _invalidate(ctx, account_id, workspace_id)
    return await _status(request, ctx, notice, account_id, workspace_id, retired)


async def _logout(request: Request, ctx: _Ctx) -> Response:
    session = await _session(request, ctx)
    await _form(request, session)
    response = RedirectResponse(f"{ctx.base}/install", status_code=303)
    await ctx.sessions.end(session, response, _cookie_path(ctx))
    return response


# -- helpers ----------------------------------------------------------------------------------------


def _installer(ctx: _Ctx, session: InstallSession) -> Installer:
    return Installer(
        ctx.app.install_store,
        _api(ctx, session),
        ctx.app.build_manifest(),
        ctx.options.name,
        ctx.settings.install_secret_grace,
    )


def _config(ctx: _Ctx, form: dict[str, str], current: dict[str, str] | None) -> dict[str, str]:
    """The submitted field values; an empty sensitive field keeps its stored value."""
    config: dict[str, str] = {}
    for f in ctx.options.fields:
        value = form.get(f"field.{f.name}", "").strip()
        if not value and f.is_sensitive and current and f.name in current:
            value = current[f.name]
        if f.required and not value:
            raise _PageError("Missing value", f"'{f.label}' is required.", 400)
        if f.type == "select" and value and value not in f.options:
            raise _PageError("Bad value", f"'{f.label}' must be one of the listed options.", 400)
        if len(value) > 10_000:
            raise _PageError("Bad value", f"'{f.label}' is too long.", 400)
        config[f.name] = value
    return config


def _event_url(ctx: _Ctx) -> str:
    return f"{ctx.base}/"


def _cookie_path(ctx: _Ctx) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(ctx.base).path.rstrip("/") or "") + "/install"


def _status_url(ctx: _Ctx, form: dict[str, str]) -> str:
    from urllib.parse import urlencode

    query = urlencode({"account_id": form.get("account_id", ""), "workspace_id": form.get("workspace_id", "")})
    return f"{ctx.base}/install/status?{query}"


def _invalidate(ctx: _Ctx, account_id: str, workspace_id: str) -> None:
    resolver = ctx.app.install_resolver
    if resolver is not None:
        resolver.invalidate(account_id, workspace_id)
