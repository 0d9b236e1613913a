"""The operations commands of the CLI: `dev`, `send` and `healthcheck` (docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from frameio_kit import send
from shared.errors import AppLoadError, DevError
from shared.settings import Settings, get_settings

_PING_TIMEOUT = 2.0  # under the compose healthcheck's timeout, with room for the broker connection


def add_dev_parser(sub: Any) -> None:
    """Register `dev`, listed first in `frameio-kit --help`: the command to start with."""
    dev = sub.add_parser(
        "dev",
        help="start here: ingress, worker and a private Redis in one command, with generated secrets",
        description=(
            "Run the ingress, a worker and a private redis-server together, for development. Needs only APP "
            "(or FRAMEIO_APP) and redis-server on PATH (or --redis-url); the webhook, action and job-signing "
            "secrets are generated for the session."
        ),
    )
    dev.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="APP",
        help="the integration, as module:attribute (default: env FRAMEIO_APP)",
    )
    dev.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    dev.add_argument("--redis-url", default=None, help="use this Redis instead of starting a private redis-server")
    dev.add_argument("--reload", action="store_true", help="restart ingress and worker when a .py file changes")
    dev.set_defaults(run=_run_dev)


def add_parsers(sub: Any) -> None:
    """Register `send` and `healthcheck`."""
    sender = sub.add_parser(
        "send",
        help="sign and post a realistic Frame.io event to an ingress; needs the signing secret",
        description=(
            "Sign and post a realistic Frame.io event (a webhook, or with --action a custom-action step) to a "
            "running ingress and print its answer. Needs the signing secret: --secret, WEBHOOK_SECRET or "
            "CUSTOM_ACTION_SECRET, or a `frameio-kit dev` session on this machine. No Redis."
        ),
    )
    send.add_arguments(sender)
    sender.set_defaults(run=send.run)

    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when the local ingress or worker is healthy (containers); the worker check needs the broker",
        description=(
            "Exit 0 when the ingress on this host answers /healthz (FRAMEIO_KIT_PORT), or when a worker on this "
            "host answers a Celery ping through the broker (REDIS_URL or FRAMEIO_KIT_BROKER_URL) within "
            f"{_PING_TIMEOUT:g} s; otherwise print one line and exit 1."
        ),
    )
    health.add_argument(
        "role",
        nargs="?",
        default="ingress",
        choices=["ingress", "worker"],
        help="what runs in this container (default ingress)",
    )
    health.add_argument("--url", default=None, help="check this URL instead (e.g. Flower's /healthcheck)")
    health.add_argument(
        "--any-host", action="store_true", help="worker: any worker answering will do, not only one on this host"
    )
    health.set_defaults(run=_run_healthcheck)


def _run_dev(args: argparse.Namespace) -> int:
    from frameio_kit.dev import DevOptions, run_dev
    from shared.logs import configure_logging

    if args.app:
        os.environ["FRAMEIO_APP"] = args.app
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.frameio_app:
        raise AppLoadError("no app given: pass APP (module:attribute) or set FRAMEIO_APP")
    configure_logging(settings)
    options = DevOptions(
        app=settings.frameio_app, host=args.host, port=args.port, redis_url=args.redis_url, reload=args.reload
    )
    try:
        return run_dev(options, settings)
    except DevError as exc:
        print(f"frameio-kit dev: {exc}", file=sys.stderr)
        return 2


def _run_healthcheck(args: argparse.Namespace) -> int:
    import httpx
    import redis
    from kombu.exceptions import OperationalError

    settings = get_settings()
    url = args.url
    try:
        if url is None and args.role == "worker":
            problem = _worker_problem(settings, args.any_host)
            if problem is not None:
                print(f"unhealthy: {problem}", file=sys.stderr)
                return 1
            if settings.worker_metrics_port:
                url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
        elif url is None:
            url = f"http://127.0.0.1:{settings.port}/healthz"
        if url is not None:
            response = httpx.get(url, timeout=3)
            if response.status_code != 200:
                print(f"unhealthy: {url} answered {response.status_code}", file=sys.stderr)
                return 1
    except (httpx.HTTPError, redis.RedisError, OperationalError, OSError) as exc:
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _worker_problem(settings: Settings, any_host: bool) -> str | None:
    """None when a worker answers a ping: a broker that answers proves nothing about a worker that
    is stuck or gone. Node names end in @<hostname> (`frameio-kit worker` and Celery both), so in a
    container only this container's worker counts."""
    from shared.jobs.publish import producer_app

    celery = producer_app(settings)
    try:
        replies = celery.control.ping(timeout=_PING_TIMEOUT) or []
    finally:
        celery.close()
    nodes = [name for reply in replies for name in reply]
    host = socket.gethostname()
    if not any_host:
        nodes = [name for name in nodes if name.rpartition("@")[2] == host]
    if nodes:
        return None
    where = "" if any_host else f" on host {host}"
    return f"no worker{where} answered a ping within {_PING_TIMEOUT:g} s"
