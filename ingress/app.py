"""`create_app`: the Starlette application for one integration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ingress import oauth, uvicorn_compat
from ingress.install.routes import install_routes
from ingress.metrics import exposed_without_token, metrics_endpoint
from ingress.routes import EventEndpoint, error_response, healthz, readyz
from ingress.state import IngressState
from shared import redis_direct
from shared.app.registry import Registry
from shared.core.signature import TOLERANCE_SECONDS
from shared.errors import RequestRejected, ServiceUnavailable
from shared.jobs import kombu_redis
from shared.settings import Settings

logger = logging.getLogger(__name__)


def create_app(app: Registry, settings: Settings) -> Starlette:
    """The ingress for `app`: POST / for Frame.io, GET /healthz and /readyz for orchestration."""
    state = IngressState(app, settings)
    _warn_about(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # In each server process, before it serves: an unsupported uvicorn would lose a connection limit,
        # an unsupported kombu or redis-py would queue messages no worker reads.
        uvicorn_compat.check()
        kombu_redis.check()
        redis_direct.check()
        try:
            if app.oauth is not None:
                await app.token_manager.check_keys()  # wrong encryption keys: refuse to start
            yield
        finally:
            await app.aclose()
            await state.close()

    events = EventEndpoint(state)
    web = IngressApp(
        events,
        routes=[
            Route("/", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/auth/login", oauth.login, methods=["GET"]),
            Route("/auth/callback", oauth.callback, methods=["GET"]),
            *(install_routes() if app.install_options is not None else []),
        ],
        # Refusals and 503s answer in ExceptionMiddleware; anything else in ServerErrorMiddleware,
        # which also re-raises it for the server's log.
        exception_handlers={RequestRejected: _error, ServiceUnavailable: _error, Exception: _error},
        lifespan=lifespan,
    )
    web.state.kit = state
    return web


def _warn_about(settings: Settings) -> None:
    if settings.dedup_window == 0:
        logger.warning(
            "FRAMEIO_KIT_DEDUP_WINDOW=0: de-duplication is off; a captured delivery replayed within the "
            "%d s signature tolerance runs its handler again",
            TOLERANCE_SECONDS,
        )
    if exposed_without_token(settings):
        logger.warning(
            "bound to %s without FRAMEIO_KIT_METRICS_TOKEN: GET /metrics answers 403 until a token is set",
            settings.host,
        )


class IngressApp(Starlette):
    """Starlette, with `POST /` (every Frame.io delivery) handed straight to its endpoint.

    Starlette's error middleware, exception middleware, router and request wrapper were about a
    tenth of a webhook's CPU in the ingress. The endpoint answers its own errors as the exception
    handlers below would, so skipping them changes no answer. Other paths, and `POST /` under a
    root path, go through Starlette, which routes them to the same endpoint.

    Public seams only (no adapter needed): the ASGI call, `super().__call__` for everything else, and
    `scope["app"]`, which Starlette documents as `request.app` and sets the same way.
    """

    def __init__(self, events: EventEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self._events(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _error(request: Request, exc: Exception) -> Response:
    return error_response(exc, f"{request.method} {request.url.path}")
