"""The worker side: Celery workers that run webhook handlers (`celery -A workers worker`)."""

from workers import signals, tasks
from workers.celery_app import app

__all__ = ["app", "signals", "tasks"]
