"""`frameio-kit dead-letters list | show ID | replay ID|--all | purge`: inspect and replay dead letters
of every job kind. Replays are signed with FRAMEIO_KIT_JOB_SIGNING_KEYS; refused jobs are never replayed."""

from __future__ import annotations

import argparse
import json
import sys

from shared.jobs.contract import AnyJob
from shared.jobs.dead_letters import DeadLetter, DeadLetterStore, printable
from shared.settings import Settings, get_settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `dead-letters` command and its actions on the CLI's subparsers."""
    parser = sub.add_parser(
        "dead-letters", help="list, show, replay or purge dead-lettered jobs (webhooks, action jobs)"
    )
    actions = parser.add_subparsers(title="actions", dest="action", required=True)
    listing = actions.add_parser("list", help="newest first, one line each")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show = actions.add_parser("show", help="one dead letter as JSON: job, error and attempt history")
    show.add_argument("id", help="dead-letter id (or a unique prefix)")
    replay = actions.add_parser("replay", help="queue dead-lettered jobs again, signed, with a fresh attempt count")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="dead-letter id (or a unique prefix)")
    target.add_argument("--all", action="store_true", help="replay every dead letter")
    purge = actions.add_parser("purge", help="delete every dead letter")
    purge.add_argument("--yes", action="store_true", help="(accepted for scripts; purge never prompts)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    store = DeadLetterStore.from_settings(settings)
    action: str = args.action
    if action == "list":
        return _list(store, args.limit)
    if action == "show":
        return _show(store, args.id)
    if action == "replay":
        return _replay(store, settings, None if args.all else args.id)
    count = store.purge()
    print(f"purged {count} dead letter(s)")
    return 0


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
    print(json.dumps(letter.model_dump(mode="json"), indent=2))
    return 0


def _replay(store: DeadLetterStore, settings: Settings, letter_id: str | None) -> int:
    from shared.jobs.signing import JobSigner

    signer = JobSigner.from_settings(settings)  # no key: exit 2 before anything is sent
    letters: list[DeadLetter]
    if letter_id is None:
        letters = [x for x in store.recent(store.count() or 1) if x.replayable]
    else:
        found = store.get(letter_id)
        if found is None:
            return _not_found(letter_id)
        if not found.replayable:
            print(
                f"frameio-kit: dead letter {found.id} was refused ({found.reason}): no ingress accepted it, "
                "so it is not replayed",
                file=sys.stderr,
            )
            return 1
        letters = [found]
    from shared import tracing
    from shared.jobs.publish import producer_app, send_job  # Celery only for this action

    def send(job: AnyJob) -> str:
        if not tracing.ACTIVE:
            return send_job(celery, job, settings.queue, signer)
        # Each replay starts a trace: its worker attempts are children of this span.
        ids = {"frameio.event.type": job.event_type, "frameio.resource.id": getattr(job, "resource_id", None)}
        with tracing.span("dead-letter replay", "PRODUCER", attributes=ids):
            return send_job(celery, job, settings.queue, signer)

    tracing.configure_tracing(settings, "frameio-kit-cli")
    celery = producer_app(settings)
    try:
        for letter in letters:
            task_id = store.replay(letter, send)
            what = letter.job.ids if letter.job is not None else letter.task
            print(printable(f"replayed {letter.id} {what} task={task_id}"))
    finally:
        celery.close()
        tracing.shutdown()
    print(f"replayed {len(letters)} dead letter(s)")
    return 0


def _not_found(letter_id: str) -> int:
    print(printable(f"frameio-kit: no dead letter {letter_id!r} (or the prefix is ambiguous)"), file=sys.stderr)
    return 1
