"""The worker side: Celery workers that run webhook handlers (`celery -A workers worker`)."""

from workers import action_tasks, ledger_sweeper, metrics, shutdown, signals, tasks
from workers.celery_app import app

__all__ = ["action_tasks", "app", "ledger_sweeper", "metrics", "shutdown", "signals", "tasks"]
