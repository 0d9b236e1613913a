"""A bare Celery app with the kit's exact Celery configuration and a no-op task: the worker baseline."""

from __future__ import annotations

import time
from typing import Any

from shared.settings import get_settings
from workers.celery_app import create_celery

app = create_celery(get_settings())


@app.task(name="bench.noop")
def noop(**_: Any) -> None:
    return None


@app.task(name="bench.sleep50")
def sleep50(**_: Any) -> None:
    time.sleep(0.05)
