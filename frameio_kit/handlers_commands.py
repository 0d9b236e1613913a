"""`frameio-kit handlers list | pause NAME | resume NAME`: see which handlers are paused (by the breaker
or by hand) and how many jobs each holds, pause one by hand, resume one. NAME is the handler's key as
`list` shows it: the event type of a webhook handler, the job name of an action job (docs/events.md).

A pause by hand holds the handler's jobs (set aside, acknowledged, never attempted or dead-lettered) until
`resume`, with no probe; resuming queues every held job again, signed as it was received.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import unquote

from frameio_kit.redis_commands import run_or_report
from shared.events.pauses import HandlerPauses, PauseInfo, describe_pause
from shared.logs import printable
from shared.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `handlers` and its actions on the CLI's subparsers."""
    parser = sub.add_parser(
        "handlers",
        help="list handlers, pause or resume one (its jobs are held meanwhile); needs Redis",
        description=(
            "See which handlers are paused and how many jobs each holds; pause one by hand or resume one. Needs "
            "the Redis that holds the queue (FRAMEIO_KIT_BROKER_URL, default REDIS_URL); `list` shows every "
            "handler of APP (or FRAMEIO_APP) when given, else those Redis knows of."
        ),
    )
    actions = parser.add_subparsers(title="actions", dest="action", required=True)
    listing = actions.add_parser("list", help="each handler: kind, state, consecutive failures, held jobs")
    listing.add_argument("app", nargs="?", default=None, metavar="APP", help="the integration (default FRAMEIO_APP)")
    pause = actions.add_parser("pause", help="hold NAME's jobs until `resume` (workers notice within a second)")
    pause.add_argument("name", metavar="NAME", help="the handler: an event type or an action job name")
    pause.add_argument("--app", default=None, help="check NAME against this integration (default FRAMEIO_APP)")
    resume = actions.add_parser("resume", help="resume NAME and queue its held jobs again")
    resume.add_argument("name", metavar="NAME", help="the handler: an event type or an action job name")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run one action; an unreachable Redis or broker is one line on stderr and exit 1, not a traceback."""
    return run_or_report("handlers", _run, args)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.redis_client import sync_client

    client = sync_client(settings.queue_redis_url, "worker")
    pauses = HandlerPauses.from_settings(settings, client)
    if args.action == "list":
        return _list(client, pauses, _handlers(args.app or settings.frameio_app))
    if args.action == "pause":
        return _pause(pauses, args.name, _handlers(args.app or settings.frameio_app))
    return _resume(pauses, settings, args.name)


def _handlers(app_ref: str | None) -> dict[str, str] | None:
    """The integration's handler keys and kinds, or None when no integration was named."""
    if not app_ref:
        return None
    from shared.app.loading import load_app
    from shared.app.registry import disable_secret_check

    disable_secret_check()  # listing handlers needs no signing secret
    app = load_app(app_ref)
    found = {name: "webhook" for name in app.webhook_handlers}
    found.update({name: "action job" for name in app.action_job_handlers})
    return found


def _known_in_redis(client: Any) -> set[str]:
    """Handlers Redis holds state for (a failure count or held jobs), paused or not."""
    from shared.redis_keys import handler_failures_key, held_jobs_key

    names: set[str] = set()
    for prefix in (handler_failures_key(""), held_jobs_key("")):
        for key in client.scan_iter(match=prefix + "*", count=500):
            text = key.decode() if isinstance(key, bytes) else str(key)
            names.add(unquote(text[len(prefix) :]))
    return names


def _list(client: Any, pauses: HandlerPauses, handlers: dict[str, str] | None) -> int:
    paused = pauses.paused()
    names = sorted({*(handlers or {}), *paused, *_known_in_redis(client)})
    failures = pauses.failures(names)
    held = pauses.held_counts(names)
    for name in names:
        kind = (handlers or {}).get(name, "-" if handlers is None else "not in the app")
        info = paused.get(name)
        state = describe_pause(info) if info is not None else "running"
        print(printable(f"{name}  [{kind}]  {state}  failures={failures.get(name, 0)}  held={held.get(name, 0)}"))
    summary = f"{len(names)} handler(s), {len(paused)} paused"
    if handlers is None:
        summary += " (pass APP or set FRAMEIO_APP to list every handler of the integration)"
    print(summary)
    return 0


def _pause(pauses: HandlerPauses, name: str, handlers: dict[str, str] | None) -> int:
    import time

    if not name.strip() or not name.isprintable() or len(name) > 256:
        print("frameio-kit handlers: NAME must be a printable handler key", file=sys.stderr)
        return 2
    if handlers is not None and name not in handlers:
        known = ", ".join(sorted(handlers)) or "none"
        print(
            printable(f"frameio-kit handlers: the app has no handler {name!r} (its handlers: {known})"), file=sys.stderr
        )
        return 1
    pauses.pause(name, PauseInfo(by="operator", at=time.time()))
    print(printable(f"paused {name}: its jobs are held until `frameio-kit handlers resume {name}`"))
    return 0


def _resume(pauses: HandlerPauses, settings: Settings, name: str) -> int:
    was_paused = pauses.resume(name)
    send = None
    celery = None
    if not settings.broker_is_redis:
        from shared.jobs.publish import producer_app, send_signed

        celery = producer_app(settings)

        def send(task_name: str, signed: dict[str, Any], describe: str, queue: str) -> str:
            return send_signed(celery, task_name, signed, describe, queue)

    try:
        moved = pauses.requeue(name, send)
    finally:
        if celery is not None:
            celery.close()
    state = "resumed" if was_paused else "was not paused"
    print(printable(f"{name} {state}: {moved} held job(s) queued again"))
    return 0
