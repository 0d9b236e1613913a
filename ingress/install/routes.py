"""The install pages: sign-in with Adobe, account and workspace choice, install, update, rotate,
uninstall. Every account-scoped step checks the allow-list, then, with the signed-in user's own
token, that Frame.io lists that account and workspace for them and names them an admin or owner of
the account, before any record is read or written; every POST checks the session's CSRF token.

A POST that changed something answers 303 to a page (Post/Redirect/Get), so reloading that page
never repeats the change; a refused form is shown again with what was typed and why. Uninstall
needs a confirmation, checked here, not only in the browser.

An account removed from `allowed_accounts` keeps one way out: its admins may still see its existing
installs and uninstall them (its events are refused meanwhile, see `InstallSecretResolver`)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ingress.install import pages
from ingress.install.context import Ctx, _PageError, page_endpoint, read_form, redirect, require_session, signed_in
from ingress.install.session import InstallSession
from shared.errors import GrantRejected, IdentityProviderUnavailable, InstallationNotFoundError, InstallFailed
from shared.install.api import FrameioAdminApi, is_account_admin
from shared.install.models import Installation, compute_diff
from shared.install.operations import Installer
from shared.oauth.pkce import challenge_for, new_verifier

logger = logging.getLogger("frameio_kit.install")

MAX_FIELD_CHARS = 10_000


def install_routes() -> list[Route]:
    return [
        Route("/install", page_endpoint(_index), methods=["GET"]),
        Route("/install/login", page_endpoint(_login), methods=["GET"]),
        Route("/install/callback", page_endpoint(_callback), methods=["GET"]),
        Route("/install/workspaces", page_endpoint(_workspaces), methods=["GET"]),
        Route("/install/status", page_endpoint(_status), methods=["GET"]),
        Route("/install/execute", page_endpoint(_execute), methods=["POST"]),
        Route("/install/rotate", page_endpoint(_rotate), methods=["POST"]),
        Route("/install/uninstall", page_endpoint(_confirm_uninstall), methods=["GET"]),
        Route("/install/uninstall", page_endpoint(_uninstall), methods=["POST"]),
        Route("/install/logout", page_endpoint(_logout), methods=["POST"]),
    ]


async def _check_scope(
    ctx: Ctx, session: InstallSession, account_id: str, workspace_id: str | None, *, retired_ok: bool = False
) -> bool:
    """The allow-list first, then the user's own view: an account or workspace their token does not
    list, or an account Frame.io does not name them admin or owner of, is refused before any record
    is read or written. Answers whether the account is retired (outside `allowed_accounts`): only
    callers passing `retired_ok` (seeing and removing an existing install) get that far. What passed
    is named on the page (`ctx.view`)."""
    bad_workspace = workspace_id is not None and (not workspace_id or len(workspace_id) > 200)
    if not account_id or len(account_id) > 200 or bad_workspace:
        raise _PageError("Bad request", "An account and workspace must be chosen.", 400)
    retired = not ctx.options.account_allowed(account_id)
    if retired and not retired_ok:
        logger.warning("install refused: account %s is not in allowed_accounts (user %s)", account_id, session.user_id)
        raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)
    api = ctx.api(session)
    account = next((a for a in await api.accounts() if str(a.get("id")) == account_id), None)
    if account is None:
        raise _PageError("Not allowed", "Your Adobe account has no access to this Frame.io account.", 403)
    if not is_account_admin(account):
        logger.warning("install refused: user %s is not an admin of account %s", session.user_id, account_id)
        raise _PageError("Not allowed", _NOT_ADMIN, 403)
    ctx.view.account_id, ctx.view.account_name = account_id, pages.account_name(account)
    if workspace_id is not None:
        workspace = next((w for w in await api.workspaces(account_id) if str(w.get("id")) == workspace_id), None)
        if workspace is None:
            raise _PageError(
                "Not allowed",
                "Your Adobe account has no access to this workspace.",
                403,
                back=(ctx.view.workspaces_url(), "Workspaces"),
            )
        ctx.view.workspace_id, ctx.view.workspace_name = workspace_id, pages.workspace_name(workspace)
    return retired


_NOT_ADMIN = "Only an admin or the owner of this Frame.io account can install, change or remove this integration."
_RETIRED = "This integration no longer serves this account: its existing installs can only be removed."


async def _existing_or_refuse(ctx: Ctx, account_id: str, workspace_id: str) -> Installation:
    """A retired account's page or uninstall needs an install to remove; anything else is refused."""
    record = await ctx.app.install_store.get(account_id, workspace_id)
    if record is None:
        raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)
    return record


# -- pages ----------------------------------------------------------------------------------------


async def _index(request: Request, ctx: Ctx) -> Response:
    session = await ctx.sessions.load(request)
    if session is None:
        return pages.landing(ctx.view, ctx.app.build_manifest())
    signed_in(ctx, session)
    items = [
        a
        for a in await ctx.api(session).accounts()
        if ctx.options.account_allowed(str(a.get("id"))) and is_account_admin(a)
    ]
    return pages.accounts(ctx.view, items)


async def _login(request: Request, ctx: Ctx) -> Response:
    verifier = new_verifier()
    challenge = challenge_for(verifier)
    response = RedirectResponse("", status_code=302, headers={"Cache-Control": "no-store"})
    state = ctx.sessions.begin_sign_in(response, verifier, ctx.cookie_path)
    assert ctx.app.oauth is not None  # noqa: S101 - _context checked it
    response.headers["location"] = ctx.manager.ims.authorize_url(
        redirect_uri=f"{ctx.base}/install/callback", scopes=ctx.app.oauth.scopes, state=state, code_challenge=challenge
    )
    return response


async def _callback(request: Request, ctx: Ctx) -> Response:
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
    user_id, name, email = await FrameioAdminApi(token, ctx.manager.http, ctx.settings.api_url).profile()
    response = RedirectResponse(f"{ctx.base}/install", status_code=303, headers={"Cache-Control": "no-store"})
    if not await ctx.sessions.complete_sign_in(response, pending, ctx.cookie_path):
        raise _PageError("Sign-in failed", _STALE_SIGN_IN, 400)
    await ctx.sessions.create(response, user_id, token, ctx.cookie_path, name=name, email=email)
    logger.info("install session started for user %s", user_id)
    return response


_STALE_SIGN_IN = "This sign-in expired, was already used or began in another browser. Sign in again."


async def _workspaces(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    account_id = request.query_params.get("account_id", "")
    retired = await _check_scope(ctx, session, account_id, None, retired_ok=True)
    items = await ctx.api(session).workspaces(account_id)
    store = ctx.app.install_store
    installed = {str(w.get("id")) for w in items if await store.get(account_id, str(w.get("id"))) is not None}
    if retired:
        items = [w for w in items if str(w.get("id")) in installed]
        if not items:
            raise _PageError("Not allowed", "This integration cannot be installed in this account.", 403)
    return pages.workspaces(ctx.view, items, installed, retired=retired)


async def _status(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    account_id = request.query_params.get("account_id", "")
    workspace_id = request.query_params.get("workspace_id", "")
    retired = await _check_scope(ctx, session, account_id, workspace_id, retired_ok=True)
    if retired:
        await _existing_or_refuse(ctx, account_id, workspace_id)
    return await _status_page(ctx, retired)


async def _status_page(
    ctx: Ctx, retired: bool, typed: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> Response:
    """The status page of the workspace `ctx.view` names (its scope already checked)."""
    record = await ctx.app.install_store.get(ctx.view.account_id, ctx.view.workspace_id)
    manifest = ctx.app.build_manifest()
    diff = compute_diff(manifest, record, ctx.event_url)
    return pages.status(
        ctx.view,
        ctx.options.fields,
        record,
        manifest,
        diff,
        retired=_RETIRED if retired else "",
        typed=typed,
        errors=errors,
    )


async def _execute(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    form = await read_form(request, session)
    account_id, workspace_id = form.get("account_id", ""), form.get("workspace_id", "")
    await _check_scope(ctx, session, account_id, workspace_id)
    installer = _installer(ctx, session)
    existing = await ctx.app.install_store.get(account_id, workspace_id)
    config, errors = _config(ctx, form, existing.config if existing else None)
    if errors:
        typed = {f.name: form.get(f"field.{f.name}", "") for f in ctx.options.fields if not f.is_sensitive}
        return await _status_page(ctx, False, typed, errors)
    try:
        if form.get("op") == "update":
            await installer.update(account_id, workspace_id, ctx.event_url, config)
            notice = "updated"
        else:
            await installer.install(account_id, workspace_id, ctx.event_url, session.user_id, config)
            notice = "installed"
    except InstallFailed as exc:
        back = (ctx.view.status_url(), "Back to the workspace")
        return pages.message(ctx.view, "Install failed", exc.public_message, 502, back=back)
    _invalidate(ctx, account_id, workspace_id)
    return redirect(ctx, ctx.view.status_url(), notice)


async def _rotate(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    form = await read_form(request, session)
    account_id, workspace_id = form.get("account_id", ""), form.get("workspace_id", "")
    await _check_scope(ctx, session, account_id, workspace_id)
    try:
        await _installer(ctx, session).rotate(account_id, workspace_id, ctx.event_url)
    except InstallFailed as exc:
        back = (ctx.view.status_url(), "Back to the workspace")
        return pages.message(ctx.view, "Rotation failed", exc.public_message, 502, back=back)
    _invalidate(ctx, account_id, workspace_id)
    return redirect(ctx, ctx.view.status_url(), "rotated")


async def _confirm_uninstall(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    account_id = request.query_params.get("account_id", "")
    workspace_id = request.query_params.get("workspace_id", "")
    retired = await _check_scope(ctx, session, account_id, workspace_id, retired_ok=True)
    record = await _record_to_remove(ctx, account_id, workspace_id, retired)
    if record is None:
        return RedirectResponse(ctx.view.status_url(), status_code=303)
    return pages.confirm_uninstall(ctx.view, record)


async def _uninstall(request: Request, ctx: Ctx) -> Response:
    """Runs only with the confirmation box ticked (`confirm=yes`); without it the confirmation page
    is shown again and nothing changes."""
    session = await require_session(request, ctx)
    form = await read_form(request, session)
    account_id, workspace_id = form.get("account_id", ""), form.get("workspace_id", "")
    retired = await _check_scope(ctx, session, account_id, workspace_id, retired_ok=True)
    record = await _record_to_remove(ctx, account_id, workspace_id, retired)
    if record is None:
        raise InstallationNotFoundError("This workspace is not installed.")
    if form.get("confirm") != "yes":
        return pages.confirm_uninstall(ctx.view, record, unconfirmed=True)
    try:
        await _installer(ctx, session).uninstall(account_id, workspace_id, ctx.event_url)
    except InstallFailed as exc:
        back = (ctx.view.status_url(), "Back to the workspace")
        return pages.message(ctx.view, "Uninstall failed", exc.public_message, 502, back=back)
    _invalidate(ctx, account_id, workspace_id)
    logger.info("uninstalled from account %s workspace %s by user %s", account_id, workspace_id, session.user_id)
    # A retired account's status page answers 403 once nothing is left there: go to the start instead.
    return redirect(ctx, f"{ctx.base}/install" if retired else ctx.view.status_url(), "uninstalled")


async def _record_to_remove(ctx: Ctx, account_id: str, workspace_id: str, retired: bool) -> Installation | None:
    if retired:
        return await _existing_or_refuse(ctx, account_id, workspace_id)
    return await ctx.app.install_store.get(account_id, workspace_id)


async def _logout(request: Request, ctx: Ctx) -> Response:
    session = await require_session(request, ctx)
    await read_form(request, session)
    response = redirect(ctx, f"{ctx.base}/install", "signed-out")
    await ctx.sessions.end(session, response, ctx.cookie_path)
    return response


# -- helpers ----------------------------------------------------------------------------------------


def _installer(ctx: Ctx, session: InstallSession) -> Installer:
    return Installer(
        ctx.app.install_store,
        ctx.api(session),
        ctx.app.build_manifest(),
        ctx.options.name,
        ctx.settings.install_secret_grace,
    )


def _config(ctx: Ctx, form: dict[str, str], current: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """The submitted field values (an empty sensitive field keeps its stored value), and what is
    wrong with them, by field name."""
    config: dict[str, str] = {}
    errors: dict[str, str] = {}
    for f in ctx.options.fields:
        value = form.get(f"field.{f.name}", "").strip()
        if not value and f.is_sensitive and current and f.name in current:
            value = current[f.name]
        if f.required and not value:
            errors[f.name] = f"'{f.label}' is required."
        elif f.type == "select" and value and value not in f.options:
            errors[f.name] = f"'{f.label}' must be one of the listed options."
        elif len(value) > MAX_FIELD_CHARS:
            errors[f.name] = f"'{f.label}' is too long (at most {MAX_FIELD_CHARS} characters)."
        config[f.name] = value
    return config, errors


def _invalidate(ctx: Ctx, account_id: str, workspace_id: str) -> None:
    resolver = ctx.app.install_resolver
    if resolver is not None:
        resolver.invalidate(account_id, workspace_id)
