"""Entry point for uvicorn's factory mode: the ingress for the integration named by FRAMEIO_APP."""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from ingress.app import create_app
from shared import tracing
from shared.app.loading import load_app
from shared.logs import configure_logging
from shared.settings import get_settings


def create_from_env() -> Starlette:
    settings = get_settings()
    configure_logging(settings, buffered=True)
    tracing.configure_tracing(settings, "frameio-kit-ingress")
    web = create_app(load_app(settings.frameio_app), settings)
    tune_gc()
    return web


def tune_gc() -> None:
    """Keep garbage collection out of the request tail (docs/performance.md).

    What start-up imported and built lives as long as the process: freezing it spares every full
    collection a ~40 ms walk over it that stalls the event loop, and a larger young generation
    collects less often. Cycles made while serving are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
