"""What every install page request shares: its `Ctx` (the App, sessions, public URL, the page frame
being filled in), the endpoint wrapper that turns failures into branded error pages, and the
session, form and Post/Redirect/Get helpers the handlers in `routes.py` use."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit
from weakref import WeakKeyDictionary

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ingress.install import pages
from ingress.install.branding import DEFAULT_ACCENT, DEFAULT_PRIMARY, Branding
from ingress.install.session import NOTICE_COOKIE, InstallSession, SessionStore, session_key
from ingress.oauth import configured_base
from ingress.public_url import is_https, public_url
from shared.app.registry import Registry
from shared.errors import ConfigurationError, FrameioApiError, InstallationNotFoundError, LockUnavailable
from shared.install.api import FrameioAdminApi
from shared.install.options import InstallOptions
from shared.oauth.token_manager import TokenManager
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.install")

MAX_FORM_BYTES = 64 * 1024


class _PageError(Exception):
    """Ends a page handler with an error page (escaped message, status, the way back)."""

    def __init__(self, title: str, text: str, status: int, back: tuple[str, str] | None = None) -> None:
        super().__init__(text)
        self.title, self.text, self.status, self.back = title, text, status, back


@dataclass
class Ctx:
    app: Registry
    options: InstallOptions
    settings: Settings
    manager: TokenManager
    sessions: SessionStore
    base: str
    """The public URL of this app, prefix included, no trailing slash."""
    view: pages.View
    """What this request's page frame shows; filled in as the handler learns it."""

    @property
    def cookie_path(self) -> str:
        return (urlsplit(self.base).path.rstrip("/") or "") + "/install"

    @property
    def event_url(self) -> str:
        return f"{self.base}/"

    def api(self, session: InstallSession) -> FrameioAdminApi:
        return FrameioAdminApi(session.access_token, self.manager.http, self.settings.api_url)

    def home(self) -> tuple[str, str]:
        return f"{self.base}/install", "All accounts" if self.view.user_name else "Start"


Handler = Callable[[Request, Ctx], Awaitable[Response]]

_brandings: WeakKeyDictionary[Registry, Branding] = WeakKeyDictionary()


def branding_of(app: Registry, options: InstallOptions) -> Branding:
    """The App's branding: name, description and logo from the install options, the rest from the
    keywords `frameio_kit.App` keeps (checked there at construction; a bare Registry has none)."""
    found = _brandings.get(app)
    if found is None:
        found = Branding(
            name=options.name,
            description=options.description,
            logo_url=options.logo_url,
            primary_color=getattr(app, "primary_color", None) or DEFAULT_PRIMARY,
            accent_color=getattr(app, "accent_color", None) or DEFAULT_ACCENT,
            custom_css=getattr(app, "custom_css", None) or "",
            show_powered_by=bool(getattr(app, "show_powered_by", True)),
        )
        _brandings[app] = found
    return found


def _context(request: Request) -> Ctx:
    state = request.app.state.kit
    app: Registry = state.app
    options = app.install_options
    if options is None or app.oauth is None:
        raise _PageError("Not found", "Install is not enabled for this integration.", 404)
    manager = app.token_manager
    configured = options.base_url or configured_base(app.oauth.base_url, request)
    try:
        branding = branding_of(app, options)
        if state.install_sessions is None:
            state.install_sessions = SessionStore(
                app.install_store.redis,
                manager.cipher,
                session_key(state.settings),
                options.session_ttl,
                secure=is_https(configured),
            )
    except ConfigurationError as exc:
        logger.error("install pages: %s", exc)
        raise _PageError("Misconfigured", "The install pages are misconfigured; see the server log.", 500) from None
    sessions: SessionStore = state.install_sessions
    view = pages.View(branding, public_url(configured, request))
    if request.method == "GET":
        view.notice = sessions.take_notice(request) or ""
    return Ctx(app, options, state.settings, manager, sessions, view.base, view)


def page_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running `handler` with its Ctx; a GET clears the notice it showed."""

    async def endpoint(request: Request) -> Response:
        try:
            ctx = _context(request)
        except _PageError as exc:
            return Response(exc.text, status_code=exc.status)
        response = await _answer(request, ctx, handler)
        if request.method == "GET" and NOTICE_COOKIE in request.cookies:
            ctx.sessions.clear_notice(response, ctx.cookie_path)  # shown once: a reload does not repeat it
        return response

    return endpoint


async def _answer(request: Request, ctx: Ctx, handler: Handler) -> Response:
    """The handler's page, or the error page of what stopped it (in the same frame: who, where, back)."""
    try:
        return await handler(request, ctx)
    except _PageError as exc:
        logger.info("install page %s: %d %r", request.url.path, exc.status, exc.text)
        return pages.message(ctx.view, exc.title, exc.text, exc.status, back=exc.back or ctx.home())
    except InstallationNotFoundError:
        back = (ctx.view.status_url(), "Back to the workspace") if ctx.view.workspace_id else ctx.home()
        return pages.message(ctx.view, "Not installed", "This workspace is not installed.", 409, back=back)
    except FrameioApiError as exc:
        logger.warning("install page %s: Frame.io %s", request.url.path, exc)
        text = f"Frame.io did not answer as expected: {exc}."
        return pages.message(ctx.view, "Frame.io error", text, 502, back=ctx.home())
    except LockUnavailable:
        text = "Another change to this workspace is running; try again."
        return pages.message(ctx.view, "Busy", text, 409, back=ctx.home())
    except RedisError:
        logger.warning("install page %s: Redis unavailable", request.url.path)
        text = "Storage is unavailable; try again shortly."
        return pages.message(ctx.view, "Unavailable", text, 503, back=ctx.home())


async def require_session(request: Request, ctx: Ctx) -> InstallSession:
    session = await ctx.sessions.load(request)
    if session is None:
        raise _PageError(
            "Signed out", "Your session has ended. Sign in again.", 401, back=(f"{ctx.base}/install", "Sign in")
        )
    signed_in(ctx, session)
    return session


def signed_in(ctx: Ctx, session: InstallSession) -> None:
    """The page frame names the signed-in user and carries the sign-out form's CSRF token."""
    ctx.view.user_name = session.name or session.user_id
    ctx.view.user_email = session.email if session.email != ctx.view.user_name else ""
    ctx.view.csrf = session.csrf


async def read_form(request: Request, session: InstallSession) -> dict[str, str]:
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


def redirect(ctx: Ctx, url: str, notice: str) -> Response:
    """Post/Redirect/Get: the page after a change is a GET, announcing `notice` (a pages.NOTICES key) once."""
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    ctx.sessions.set_notice(response, notice, ctx.cookie_path)
    return response
