"""The `frameio-kit` command: run the ingress or a worker for an integration."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from frameio_kit import (
    dead_letter_commands,
    events_commands,
    flower_command,
    handlers_commands,
    operations_commands,
)
from frameio_kit.dev_secrets import refuse_known_secrets
from frameio_kit.placeholder_secrets import refuse_placeholder_secrets
from shared.errors import AppLoadError, ConfigurationError
from shared.logs import configure_logging
from shared.settings import Settings, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except AppLoadError as exc:
        print(f"frameio-kit: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"frameio-kit: configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frameio-kit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"frameio-kit {_version()}")
    sub = parser.add_subparsers(title="commands")

    operations_commands.add_dev_parser(sub)  # first: the command a newcomer runs
    ingress = sub.add_parser(
        "ingress",
        help="serve the HTTP ingress (uvicorn); needs Redis, the signing secrets and FRAMEIO_KIT_JOB_SIGNING_KEYS",
        description=(
            "Serve the HTTP ingress (uvicorn): verify Frame.io's signatures, enqueue webhooks, answer custom "
            "actions. Needs APP or FRAMEIO_APP, Redis (REDIS_URL), WEBHOOK_SECRET and/or CUSTOM_ACTION_SECRET "
            "(or secrets given in code) and FRAMEIO_KIT_JOB_SIGNING_KEYS; FRAMEIO_KIT_ENCRYPTION_KEYS with sign-in."
        ),
    )
    _app_argument(ingress)
    ingress.add_argument("--host", default=None, help="interface to bind (default FRAMEIO_KIT_HOST, 127.0.0.1)")
    ingress.add_argument("--port", type=int, default=None, help="port to bind (default FRAMEIO_KIT_PORT, 8000)")
    ingress.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    ingress.set_defaults(run=_run_ingress)

    worker = sub.add_parser(
        "worker",
        help="run a Celery worker for the handlers; needs Redis and FRAMEIO_KIT_JOB_SIGNING_KEYS",
        description=(
            "Run a Celery worker that runs the webhook and action-job handlers. Needs APP or FRAMEIO_APP, "
            "the broker (REDIS_URL or FRAMEIO_KIT_BROKER_URL) and FRAMEIO_KIT_JOB_SIGNING_KEYS (the ingress's "
            "value); FRAMEIO_KIT_ENCRYPTION_KEYS with sign-in. Never needs the webhook or action secrets."
        ),
    )
    _app_argument(worker)
    worker.add_argument(
        "--concurrency", "-c", type=int, default=32, help="handlers in flight per worker process (default 32)"
    )
    worker.add_argument(
        "--pool",
        "-P",
        default="threads",
        choices=["threads", "prefork", "solo"],
        help="Celery pool (default threads: async handlers share one event loop)",
    )
    worker.add_argument("--hostname", "-n", default=None, help="node name (default frameio-kit-<pid>@<host>)")
    worker.add_argument("--loglevel", "-l", default=None, help="log level (default FRAMEIO_KIT_LOG_LEVEL)")
    worker.add_argument(
        "--queues",
        "-Q",
        default=None,
        metavar="NAMES",
        help="consume only these queues, comma-separated (default: every queue the integration uses)",
    )
    worker.set_defaults(run=_run_worker)

    dead_letter_commands.add_parser(sub)
    events_commands.add_parser(sub)
    handlers_commands.add_parser(sub)
    operations_commands.add_parsers(sub)
    flower_command.add_parser(sub)
    return parser


def _version() -> str:
    try:
        return version("frameio-kit")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="APP",
        help="the integration, as module:attribute (default: env FRAMEIO_APP)",
    )


def _settings_for(app_ref: str | None) -> Settings:
    """Settings with APP taking precedence over FRAMEIO_APP; the value is exported so that
    child processes (uvicorn workers, Celery) find the same integration."""
    if app_ref:
        os.environ["FRAMEIO_APP"] = app_ref
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.frameio_app:
        raise AppLoadError("no app given: pass APP (module:attribute) or set FRAMEIO_APP")
    return settings


def _run_ingress(args: argparse.Namespace) -> int:
    import uvicorn

    from ingress.server import LimitedHttpToolsProtocol
    from shared.app.loading import load_app
    from shared.jobs.signing import signing_keys
    from shared.oauth.token_manager import check_keys_at_start_up

    if args.host:
        os.environ["FRAMEIO_KIT_HOST"] = args.host  # the children judge /metrics exposure by the bind address
    settings = _settings_for(args.app)
    refuse_placeholder_secrets(settings)
    refuse_known_secrets(settings)
    configure_logging(settings)
    app = load_app(settings.frameio_app)  # fail here, in the terminal, rather than in a uvicorn child
    if args.workers > 1 and settings.action_state == "memory" and app.action_handlers:
        raise ConfigurationError(
            f"--workers {args.workers} with FRAMEIO_KIT_ACTION_STATE=memory: each process would keep its own "
            "multi-step form state; set FRAMEIO_KIT_ACTION_STATE=redis or run one worker process"
        )
    check_keys_at_start_up(app.oauth, settings)
    signing_keys(settings)
    uvicorn.run(
        "ingress.main:create_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        loop="uvloop",
        http=LimitedHttpToolsProtocol,
        access_log=False,
        server_header=False,  # no software banner for scanners, and one header less per response
        log_config=None,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_timeout,
    )
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    settings = _settings_for(args.app)
    refuse_placeholder_secrets(settings)
    from shared.jobs.routing import parse_queue_list
    from shared.oauth.token_manager import check_keys_at_start_up
    from workers.celery_app import app
    from workers.runtime import current

    runtime = current()
    runtime.signer  # noqa: B018 - a missing job-signing key fails here, with exit 2
    runtime.app  # noqa: B018
    check_keys_at_start_up(runtime.app.oauth, settings)
    from workers.timeouts import check_handler_timeouts

    check_handler_timeouts(runtime.app, settings)  # a timeout not below the visibility timeout: exit 2
    name = args.hostname or f"frameio-kit-{os.getpid()}@{socket.gethostname()}"
    # docs/tenants.md: each queue named here is consumed with its account shards (workers/queues.py).
    selected = ["-Q", ",".join(parse_queue_list(args.queues))] if args.queues is not None else []
    argv = [
        "worker",
        "-P",
        args.pool,
        "-c",
        str(args.concurrency),
        "-n",
        name,
        "-E",
        "-l",
        (args.loglevel or settings.log_level).upper(),
        *selected,
    ]
    app.worker_main(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
