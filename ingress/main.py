"""Entry point for uvicorn's factory mode: the ingress for the integration named by FRAMEIO_APP."""

from __future__ import annotations

from starlette.applications import Starlette

from ingress.app import create_app
from shared.loading import load_app
from shared.logs import configure_logging
from shared.settings import get_settings


def create_from_env() -> Starlette:
    settings = get_settings()
    configure_logging(settings)
    return create_app(load_app(settings.frameio_app), settings)
