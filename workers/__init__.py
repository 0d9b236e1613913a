"""The worker side: Celery workers that run webhook and action-job handlers (`celery -A workers worker`)."""

from workers import ledger_sweeper, metrics, ordering, shutdown, signals, tasks
from workers.celery_app import app

__all__ = ["app", "ledger_sweeper", "metrics", "ordering", "shutdown", "signals", "tasks"]
