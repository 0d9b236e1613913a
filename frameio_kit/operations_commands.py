"""The operations commands of the CLI: `dev`, `send` and `healthcheck` (docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from frameio_kit import send
from shared.errors import AppLoadError, DevError
from shared.settings import get_settings


def add_parsers(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run ingress, worker and a private Redis together, for development")
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

    sender = sub.add_parser("send", help="sign and post a realistic Frame.io event to an ingress")
    send.add_arguments(sender)
    sender.set_defaults(run=send.run)

    health = sub.add_parser("healthcheck", help="exit 0 when the local ingress or worker is healthy (containers)")
    health.add_argument(
        "role",
        nargs="?",
        default="ingress",
        choices=["ingress", "worker"],
        help="what runs in this container (default ingress)",
    )
    health.add_argument("--url", default=None, help="check this URL instead (e.g. Flower's /healthcheck)")
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

    from shared.redis_client import sync_client

    settings = get_settings()
    url = args.url
    try:
        if url is None and args.role == "worker":
            # A worker is healthy when its broker answers and, if it serves metrics, it answers too.
            client = sync_client(settings.celery_broker_url, "probe")
            try:
                client.ping()
            finally:
                client.close()
            if settings.worker_metrics_port:
                url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
        elif url is None:
            url = f"http://127.0.0.1:{settings.port}/healthz"
        if url is not None:
            response = httpx.get(url, timeout=3)
            if response.status_code != 200:
                print(f"unhealthy: {url} answered {response.status_code}", file=sys.stderr)
                return 1
    except (httpx.HTTPError, redis.RedisError, OSError) as exc:
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
