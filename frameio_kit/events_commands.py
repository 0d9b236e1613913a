"""`frameio-kit events list | show ID | replay`: what happened to each acknowledged webhook and action job
(the event history, docs/events.md), and re-running chosen ones.

A replay re-sends the signed job the ingress queued, unchanged (`send_signed`: nothing here signs), once it
verifies with FRAMEIO_KIT_JOB_SIGNING_KEYS and is within FRAMEIO_KIT_JOB_MAX_AGE. The event's completion
marker is cleared first, so the worker runs it again rather than skipping it; the run is recorded as a
further attempt of the same event. Only events that are done or dead are replayed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frameio_kit.redis_commands import run_or_report
from shared.errors import ReplayRefused
from shared.events.filters import EventFilter, parse_when
from shared.events.history import EventHistory
from shared.events.model import FINAL, STATUSES, EventRecord
from shared.logs import printable
from shared.settings import Settings

SendSigned = Callable[[str, dict[str, Any], str], str]
"""Publish an already signed job: (task name, signed kwargs, short description) -> task id."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `events` and its actions on the CLI's subparsers."""
    parser = sub.add_parser(
        "events",
        help="list, show or replay acknowledged webhooks and action jobs (the event history); needs Redis",
        description=(
            "What happened to each acknowledged webhook and action job: status, attempts, error classes. Needs "
            "the Redis that holds the queue (FRAMEIO_KIT_BROKER_URL, default REDIS_URL); replay also needs "
            "REDIS_URL, the broker and FRAMEIO_KIT_JOB_SIGNING_KEYS (FRAMEIO_KIT_ENCRYPTION_KEYS for action jobs)."
        ),
    )
    actions = parser.add_subparsers(title="actions", dest="action", required=True)
    listing = actions.add_parser("list", help="newest first, one line each (or --json)")
    add_filter_arguments(listing)
    listing.add_argument("--limit", type=_positive, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print the records as a JSON array")
    show = actions.add_parser("show", help="one event with every attempt (start, duration, outcome, error class)")
    show.add_argument("id", help="event id (or a unique prefix of at least 6 characters)")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    replay = actions.add_parser(
        "replay", help="run chosen done or dead events again, from the signed job the ingress queued"
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="event ids (or unique prefixes); or use the filters")
    add_filter_arguments(replay)
    replay.add_argument("--all", action="store_true", help="every done or dead event (no filter needed)")
    replay.add_argument("--limit", type=_positive, default=None, help="at most this many (newest first)")
    replay.add_argument("--dry-run", action="store_true", help="print exactly what would run, and run nothing")
    replay.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (scripts)")
    parser.set_defaults(run=run)


def add_filter_arguments(parser: argparse.ArgumentParser, *, status: bool = True) -> None:
    """The filters `events list|replay` and `dead-letters replay` share."""
    parser.add_argument("--type", help="event type: a prefix (file. or file.ready) or a glob (file.*)")
    parser.add_argument("--account", help="account id")
    parser.add_argument("--workspace", help="workspace id")
    parser.add_argument("--resource", help="resource id")
    if status:
        parser.add_argument(
            "--status",
            action="append",
            type=_statuses,
            default=[],
            help=f"status, repeat or comma-separate for several: {', '.join(STATUSES)}",
        )
    parser.add_argument("--since", type=_when, help="from this time: ISO (2025-05-02T10:00) or a duration ago (2h)")
    parser.add_argument("--until", type=_when, help="up to this time: ISO or a duration ago (30m)")


def filter_from(args: argparse.Namespace) -> EventFilter:
    statuses = {s for group in getattr(args, "status", None) or [] for s in group}
    return EventFilter(
        type=args.type,
        account=args.account,
        workspace=args.workspace,
        resource=args.resource,
        statuses=frozenset(statuses),
        since=args.since,
        until=args.until,
    )


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _when(value: str) -> float:
    try:
        return parse_when(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses(value: str) -> list[str]:
    found = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in found if s not in STATUSES]
    if unknown or not found:
        raise argparse.ArgumentTypeError(f"{value!r}: statuses are {', '.join(STATUSES)}")
    return found


def run(args: argparse.Namespace) -> int:
    """Run one action; an unreachable Redis or broker is one line on stderr and exit 1, not a traceback."""
    return run_or_report("events", _run, args)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    history = EventHistory.from_settings(settings)
    if args.action == "list":
        return _list(history, settings, filter_from(args), args.limit, args.json)
    if args.action == "show":
        return _show(history, args.id, args.json)
    return _replay(history, settings, args)


def _list(history: EventHistory, settings: Settings, where: EventFilter, limit: int, as_json: bool) -> int:
    records = history.find(where, limit)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return 0
    for record in records:
        print(line(record))
    note = f", the newest {limit} shown (--limit)" if len(records) >= limit else ""
    print(f"{len(records)} event(s){note}")
    if not records and settings.event_max == 0:
        print("frameio-kit events: the event history is off here (FRAMEIO_KIT_EVENT_MAX=0)", file=sys.stderr)
    return 0


def line(record: EventRecord) -> str:
    """One line for `list` and `replay`, with every control character escaped."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.received_at))
    ids = f"account={record.account_id} workspace={record.workspace_id} resource={record.resource_id}"
    error = f"  last error {record.last_error}" if record.last_error else ""
    text = f"{record.short_id}  {stamp}  {record.status:8s}  {record.type}  {ids}  attempts={len(record.attempts)}"
    return printable(text + error)


def _show(history: EventHistory, event_id: str, as_json: bool) -> int:
    record = history.get(event_id)
    if record is None:
        print(printable(f"frameio-kit: no event {event_id!r} (or the prefix is ambiguous)"), file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(record.model_dump(mode="json"), indent=2))
        return 0
    print(printable(f"id         {record.id}"))
    for label, value in (
        ("type", record.type),
        ("handler", f"{record.handler} ({record.kind.replace('_', ' ')})"),
        ("status", record.status + (f" ({record.reason})" if record.reason else "")),
        ("received", _stamp(record.received_at)),
        ("queue", record.queue),
        ("account", record.account_id),
        ("workspace", record.workspace_id),
        ("project", record.project_id),
        ("resource", record.resource_id),
        ("user", record.user_id),
        ("trace", record.trace_id or "-"),
        ("replays", str(record.replays)),
    ):
        print(printable(f"{label:10s} {value}"))
    print(f"attempts   {len(record.attempts)}")
    for i, attempt in enumerate(record.attempts, start=1):
        took = f"{attempt.duration_ms:.1f} ms" if attempt.duration_ms is not None else "-"
        error = f"  {attempt.error}" if attempt.error else ""
        text = (
            f"  {i}. {_stamp(attempt.started_at)}  try {attempt.number}  {attempt.status:8s}  {took}"
            f"  task={attempt.task_id}{error}"
        )
        print(printable(text))
    return 0


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


@dataclass
class _Planned:
    record: EventRecord
    task: str = ""
    signed: dict[str, Any] | None = None
    dead_letter: Any = None  # the event's dead letter, replayed through the dead-letter store
    refused: str | None = None
    skipped: str | None = None


def _replay(history: EventHistory, settings: Settings, args: argparse.Namespace) -> int:
    from shared.jobs.dead_letters import DeadLetterStore
    from shared.jobs.signing import JobSigner

    where = filter_from(args)
    if not args.ids and where.empty and not args.all:
        print("frameio-kit events replay: name event ids, give a filter, or pass --all", file=sys.stderr)
        return 2
    signer = JobSigner.from_settings(settings)  # no key: exit 2 before anything is read or sent
    if args.ids:
        records = []
        for event_id in args.ids:
            found = history.get(event_id)
            if found is None:
                print(printable(f"frameio-kit: no event {event_id!r} (or the prefix is ambiguous)"), file=sys.stderr)
                return 1
            records.append(found)
    else:
        records = history.find(where, args.limit)
    letters = DeadLetterStore.from_settings(settings)
    plan = [_plan(history, letters, signer, record) for record in records]
    runnable = [p for p in plan if p.refused is None and p.skipped is None]
    refused = [p for p in plan if p.refused is not None]
    for p in plan:
        if p.skipped is not None:
            print(printable(f"skipped {p.record.short_id} {p.record.type}: {p.skipped}"), file=sys.stderr)
        elif p.refused is not None:
            print(printable(f"refused {p.record.short_id} {p.record.type}: not replayed, {p.refused}"), file=sys.stderr)
    if args.dry_run:
        for p in runnable:
            print("would replay " + line(p.record))
        print(f"{len(runnable)} event(s) would be replayed" + (f", {len(refused)} refused" if refused else ""))
        return 1 if refused else 0
    if not runnable:
        print("replayed 0 event(s)" + (f", refused {len(refused)}" if refused else ""))
        return 1 if refused else 0
    if not args.yes and not _confirmed(len(runnable)):
        print("frameio-kit events: nothing replayed (pass --yes to replay without asking)", file=sys.stderr)
        return 1
    return _send_all(history, letters, signer, settings, runnable, len(refused))


def _plan(history: EventHistory, letters: Any, signer: Any, record: EventRecord) -> _Planned:
    """What a replay of `record` would do, checked as the replay itself checks it (nothing is sent)."""
    from shared.jobs.contract import JOB_MODELS
    from shared.jobs.signing import unsigned

    if record.status not in FINAL:
        return _Planned(record, skipped=f"still {record.status} (only done or dead events are replayed)")
    letter = letters.get(record.short_id) if record.status == "dead" else None
    if letter is not None and letter.job is not None and letter.job.idempotency_key == record.id:
        why = letter.replay_check(signer)
        return _Planned(record, task=letter.task, signed=letter.signed, dead_letter=letter, refused=why)
    try:
        task, signed = history.signed_job(record)
    except ReplayRefused as exc:
        return _Planned(record, refused=str(exc))
    verdict = signer.verify(task, signed)
    if verdict == "expired":
        return _Planned(record, refused=f"its signed job is older than FRAMEIO_KIT_JOB_MAX_AGE ({signer.max_age} s)")
    if verdict != "valid" or task not in JOB_MODELS:
        return _Planned(record, refused=f"its kept signed job does not verify (signature {verdict})")
    try:
        job = JOB_MODELS[task].model_validate(unsigned(signed))
    except ValueError:
        return _Planned(record, refused="its kept signed job does not parse")
    if job.idempotency_key != record.id:
        return _Planned(record, refused="its kept signed job is another event's")
    return _Planned(record, task=task, signed=signed)


def _confirmed(count: int) -> bool:
    """Ask on the terminal; no terminal, end of input or anything but y/yes is a no."""
    try:
        answer = input(f"replay {count} event(s)? each runs its handler again [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def _send_all(
    history: EventHistory, letters: Any, signer: Any, settings: Settings, runnable: list[_Planned], refused: int
) -> int:
    from shared import tracing
    from shared.jobs.contract import JOB_MODELS
    from shared.jobs.publish import producer_app, send_signed
    from shared.jobs.signing import unsigned
    from shared.redis_client import sync_client
    from shared.redis_keys import attempts_key, done_key

    tracing.configure_tracing(settings, "frameio-kit-cli")
    celery = producer_app(settings)
    queue_redis = sync_client(settings.queue_redis_url, "worker")
    replayed = 0
    try:
        for p in runnable:
            record, signed = p.record, p.signed or {}
            job = JOB_MODELS[p.task].model_validate(unsigned(signed))
            queue = record.queue or settings.queue  # the queue the ingress routed it to (docs/tenants.md)
            # Marked first: the worker's own status writes must come after this one, never before.
            history.replayed(record)
            try:
                if p.dead_letter is not None:
                    task_id = letters.replay(
                        p.dead_letter,
                        signer,
                        lambda name, kwargs, j, q=queue: send_signed(celery, name, kwargs, j.describe(), q),
                    )
                else:
                    # A done event's completion marker would make the worker skip it: cleared for this event only.
                    queue_redis.delete(done_key(record.id), attempts_key(record.id))
                    task_id = send_signed(celery, p.task, signed, job.describe(), queue)
            except Exception as exc:  # ReplayRefused, or the broker refused the publish
                history.apply(history.status(record.id, record.status, record.reason))
                refused += 1
                print(printable(f"refused {record.short_id} {record.type}: not replayed, {exc}"), file=sys.stderr)
                continue
            replayed += 1
            print(printable(f"replayed {record.short_id} {record.type} task={task_id}"))
    finally:
        celery.close()
        queue_redis.close()
        tracing.shutdown()
    print(f"replayed {replayed} event(s)" + (f", refused {refused}" if refused else ""))
    return 1 if refused else 0


# -- `dead-letters replay` with the same filters -----------------------------------------------------


def matching_dead_letters(letters: list[Any], where: EventFilter, limit: int | None) -> list[Any]:
    """The dead letters (newest first) whose job `where` matches, by the ids in its body and its
    dead-letter time; at most `limit`."""
    from shared.events.model import EventIds
    from shared.jobs.contract import ActionJob

    found = []
    for letter in letters:
        job = letter.job
        if job is None:
            continue
        ids = EventIds.from_body(job.body)
        if isinstance(job, ActionJob) and job.context:
            ids = ids.or_else(EventIds.from_mapping(job.context))
        if where.matches(
            event_type=job.event_type,
            account=ids.account_id,
            workspace=ids.workspace_id,
            resource=ids.resource_id,
            at=letter.dead_lettered_at,
        ):
            found.append(letter)
            if limit is not None and len(found) >= limit:
                break
    return found


def dead_letters_dry_run(letters: list[Any], signer: Any) -> int:
    """What `dead-letters replay` would do, checked as it checks (signature, age): nothing is sent."""
    would = refused = 0
    for letter in letters:
        what = letter.job.ids if letter.job is not None else f"{letter.task} task={letter.task_id}"
        why = letter.replay_check(signer)
        if why is None:
            would += 1
            print(printable(f"would replay {letter.id} {what}"))
        else:
            refused += 1
            print(printable(f"refused {letter.id} {what}: not replayed, {why}"), file=sys.stderr)
    print(f"{would} dead letter(s) would be replayed" + (f", {refused} refused" if refused else ""))
    return 1 if refused else 0


def replay_marker(settings: Settings) -> Callable[[str], None]:
    """For `dead-letters replay`: mark an event about to be sent again in the history (the replay
    counted, `queued`; before the send, so the worker's own status writes come after)."""
    history = EventHistory.from_settings(settings)

    def mark(event_id: str) -> None:
        record = history.get(event_id)
        if record is not None:
            history.replayed(record)

    return mark
