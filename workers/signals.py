"""Worker lifecycle: load the integration at start so a bad FRAMEIO_APP fails fast; stop the loop at the end."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_shutdown

from workers import runtime


@worker_init.connect
def _load_integration(**_: Any) -> None:
    runtime.get_kit_app()


@worker_shutdown.connect
def _stop_loop(**_: Any) -> None:
    runtime.shutdown()
