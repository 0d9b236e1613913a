"""`create_app`: the Starlette application for one integration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingress import oauth
from ingress.install.routes import install_routes
from ingress.metrics import exposed_without_token, metrics_endpoint
from ingress.routes import healthz, readyz, receive_event
from ingress.state import IngressState
from shared.core.registry import Registry
from shared.core.signature import TOLERANCE_SECONDS
from shared.errors import RequestRejected, ServiceUnavailable
from shared.settings import Settings

logger = logging.getLogger(__name__)


def create_app(app: Registry, settings: Settings) -> Starlette:
    """The ingress for `app`: POST / for Frame.io, GET /healthz and /readyz for orchestration."""
    state = IngressState(app, settings)
    _warn_about(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            if app.oauth is not None:
                await app.token_manager.check_keys()  # wrong encryption keys: refuse to start
            yield
        finally:
            await app.aclose()
            await state.close()

    web = Starlette(
        routes=[
            Route("/", receive_event, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/auth/login", oauth.login, methods=["GET"]),
            Route("/auth/callback", oauth.callback, methods=["GET"]),
            *(install_routes() if app.install_options is not None else []),
        ],
        exception_handlers={
            RequestRejected: _rejected,
            ServiceUnavailable: _unavailable,
            Exception: _unexpected,
        },
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


async def _rejected(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestRejected):
        return await _unexpected(request, exc)
    return JSONResponse({"error": exc.public_message}, status_code=exc.status_code)


async def _unavailable(request: Request, exc: Exception) -> Response:
    message = exc.public_message if isinstance(exc, ServiceUnavailable) else "service unavailable, retry later"
    return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)
