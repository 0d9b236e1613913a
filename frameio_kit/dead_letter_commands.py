"""`frameio-kit dead-letters list | show ID | replay ID|--all | purge`: inspect and replay dead letters
of every job kind. A replay re-sends the signed job the worker received, unchanged, once it verifies with
FRAMEIO_KIT_JOB_SIGNING_KEYS and is within FRAMEIO_KIT_JOB_MAX_AGE; it never signs. Anything else is refused
and reported, one line each, and the command exits 1."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from frameio_kit import events_commands
from frameio_kit.redis_commands import run_or_report
from shared.errors import ReplayRefused
from shared.jobs.contract import AnyJob
from shared.jobs.dead_letters import DeadLetter, DeadLetterStore
from shared.logs import printable
from shared.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `dead-letters` command and its actions on the CLI's subparsers."""
    parser = sub.add_parser(
        "dead-letters",
        help="list, show, replay or purge dead-lettered jobs (webhooks, action jobs); needs Redis",
        description=(
            "Inspect, replay or purge the jobs that failed for good. Needs Redis (REDIS_URL); replay also needs "
            "the broker (FRAMEIO_KIT_BROKER_URL, default REDIS_URL) and FRAMEIO_KIT_JOB_SIGNING_KEYS."
        ),
    )
    actions = parser.add_subparsers(title="actions", dest="action", required=True)
    listing = actions.add_parser("list", help="newest first, one line each")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show = actions.add_parser("show", help="one dead letter as JSON: job, error and attempt history")
    show.add_argument("id", help="dead-letter id (or a unique prefix)")
    replay = actions.add_parser(
        "replay", help="queue dead-lettered jobs again, as signed, if they verify; with a fresh attempt count"
    )
    target = replay.add_mutually_exclusive_group()
    target.add_argument("id", nargs="?", help="dead-letter id (or a unique prefix)")
    target.add_argument("--all", action="store_true", help="replay every dead letter")
    # The filters of `events replay` (docs/events.md), on the dead letters' jobs and dead-letter time.
    events_commands.add_filter_arguments(replay, status=False)
    replay.add_argument("--limit", type=int, default=None, help="at most this many matching ones (newest first)")
    replay.add_argument("--dry-run", action="store_true", help="print exactly what would be replayed, send nothing")
    purge = actions.add_parser("purge", help="delete every dead letter")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (scripts)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run one action; an unreachable Redis or broker is one line on stderr and exit 1, not a traceback."""
    return run_or_report("dead-letters", _run, args)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    store = DeadLetterStore.from_settings(settings)
    action: str = args.action
    if action == "list":
        return _list(store, args.limit)
    if action == "show":
        return _show(store, args.id)
    if action == "replay":
        where = events_commands.filter_from(args)
        if args.id is None and not args.all and where.empty:
            print("frameio-kit dead-letters replay: name a dead letter, give a filter, or pass --all", file=sys.stderr)
            return 2
        return _replay(store, settings, None if args.all or args.id is None else args.id, args)
    if not args.yes and not _confirmed(store.count()):
        print("frameio-kit dead-letters: nothing purged (pass --yes to purge without asking)", file=sys.stderr)
        return 1
    count = store.purge()
    print(f"purged {count} dead letter(s)")
    return 0


def _confirmed(count: int) -> bool:
    """Ask on the terminal; no terminal, end of input or anything but y/yes is a no."""
    try:
        answer = input(f"delete all {count} dead letter(s)? this cannot be undone [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def _list(store: DeadLetterStore, limit: int) -> int:
    letters = store.recent(limit)
    for letter in letters:
        print(letter.summary)
    total = store.count()
    print(f"{total} dead letter(s)" + (f", {len(letters)} shown" if total > len(letters) else ""))
    return 0


def _show(store: DeadLetterStore, letter_id: str) -> int:
    letter = store.get(letter_id)
    if letter is None:
        return _not_found(letter_id)
    print(json.dumps(letter.shown(), indent=2))
    return 0


def _replay(store: DeadLetterStore, settings: Settings, letter_id: str | None, args: Any = None) -> int:
    from shared.jobs.signing import JobSigner

    signer = JobSigner.from_settings(settings)  # no key: exit 2 before anything is sent
    letters: list[DeadLetter]
    skipped = 0
    if letter_id is None:
        everything = store.recent(store.count() or 1)
        # Records of jobs the workers refused (unsigned, expired) hold no job: nothing to replay or report.
        letters = [x for x in everything if x.replayable]
        skipped = len(everything) - len(letters)
        if args is not None:  # the filters (docs/events.md)
            letters = events_commands.matching_dead_letters(letters, events_commands.filter_from(args), args.limit)
    else:
        found = store.get(letter_id)
        if found is None:
            return _not_found(letter_id)
        letters = [found]
    if args is not None and args.dry_run:
        return events_commands.dead_letters_dry_run(letters, signer)
    from shared import tracing
    from shared.jobs.publish import producer_app, send_signed  # Celery only for this action
    from shared.jobs.routing import Router

    router = Router(settings)

    mark_replayed = events_commands.replay_marker(settings)  # the event history (docs/events.md)

    def send(task_name: str, signed: dict[str, Any], job: AnyJob) -> str:
        mark_replayed(job.idempotency_key)
        # Back to its handler's queue, on its account's shard (docs/tenants.md).
        queue = router.queue_for_job(job.queue, job.body, getattr(job, "context", None))
        if not tracing.ACTIVE:
            return send_signed(celery, task_name, signed, job.describe(), queue)
        # Each replay starts a trace: its worker attempts are children of this span.
        ids = {"frameio.event.type": job.event_type, "frameio.resource.id": getattr(job, "resource_id", None)}
        with tracing.span("dead-letter replay", "PRODUCER", attributes=ids):
            return send_signed(celery, task_name, signed, job.describe(), queue)

    tracing.configure_tracing(settings, "frameio-kit-cli")
    celery = producer_app(settings)
    replayed = refused = 0
    try:
        for letter in letters:
            try:
                task_id = store.replay(letter, signer, send)
            except ReplayRefused as exc:
                refused += 1
                print(printable(f"refused {letter.id} {_what(letter)}: not replayed, {exc}"), file=sys.stderr)
                continue
            replayed += 1
            print(printable(f"replayed {letter.id} {_what(letter)} task={task_id}"))
    finally:
        celery.close()
        tracing.shutdown()
    summary = f"replayed {replayed} dead letter(s)"
    if refused:
        summary += f", refused {refused}"
    if skipped:
        summary += f" ({skipped} record(s) of jobs the workers refused are never replayed)"
    print(summary)
    return 1 if refused else 0


def _what(letter: DeadLetter) -> str:
    return letter.job.ids if letter.job is not None else f"{letter.task} task={letter.task_id}"


def _not_found(letter_id: str) -> int:
    print(printable(f"frameio-kit: no dead letter {letter_id!r} (or the prefix is ambiguous)"), file=sys.stderr)
    return 1
