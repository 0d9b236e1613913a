"""The event history: one record per acknowledged webhook and action job (ids, type, status, attempts
with their error class; never a body, a form answer, a token or a secret), bounded by age
(FRAMEIO_KIT_EVENT_RETENTION) and count (FRAMEIO_KIT_EVENT_MAX, 0: off), with the signed job of each
kept for replay.

On the queue's Redis (`Settings.queue_redis_url`), beside the scripts whose round trips carry the writes:
- `frameio-kit:event:<id>`, a hash: `m` the static part (JSON, written once by the ingress), `s` the
  status, `a:<task id>:<n>` one attempt each (JSON), `r` replays, `why` the dead-letter reason. It
  expires FRAMEIO_KIT_EVENT_RETENTION seconds after the ingress wrote it.
- `frameio-kit:events`, the ids by acknowledgement time: listing, and both bounds (record.lua).
- `frameio-kit:event-envelope:<id>`, the signed job: a webhook's queued message as it is (its body is
  Frame.io's ids, as in the queue and the dead letters); an action job's sealed with
  FRAMEIO_KIT_ENCRYPTION_KEYS (it carries form answers), and not kept at all without a key. Kept
  min(retention, FRAMEIO_KIT_JOB_MAX_AGE): workers refuse an older signed job anyway.

Writers: the ingress (record.lua, pipelined before the script that queues the batch), the workers
(status and attempt in the round trips of the completion check and marker, update.lua otherwise).
Nothing recreates a record the bounds removed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any, NamedTuple

import orjson
import redis
import redis.asyncio

from shared import tracing
from shared.core.events import AnyEvent
from shared.errors import ReplayRefused
from shared.events.filters import EventFilter
from shared.events.model import EventIds, EventRecord, Kind, Status, meta_json
from shared.jobs.contract import HANDLE_ACTION_JOB, HANDLE_WEBHOOK
from shared.jobs.dead_letters import RecordUpdate
from shared.jobs.kombu_redis import task_of
from shared.oauth.token_store import TokenCipher
from shared.redis_client import sync_client
from shared.redis_keys import EVENT_KEY_PREFIX, event_envelope_key, event_index_key, event_key
from shared.settings import Settings

RECORD_LUA = resources.files("shared.events").joinpath("record.lua").read_text(encoding="utf-8")
_UPDATE_LUA = resources.files("shared.events").joinpath("update.lua").read_text(encoding="utf-8")
_KINDS: dict[str, Kind] = {HANDLE_WEBHOOK: "webhook", HANDLE_ACTION_JOB: "action_job"}
_BATCH = 500


def history_cipher(settings: Settings) -> TokenCipher | None:
    """The token store's cipher over FRAMEIO_KIT_ENCRYPTION_KEYS, or None when no key is set (then
    action jobs' signed jobs are not kept, and cannot be replayed from the history)."""
    raw = settings.encryption_keys.get_secret_value() if settings.encryption_keys is not None else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return TokenCipher(keys) if keys else None


def envelope_ttl(settings: Settings) -> int:
    return max(1, min(settings.event_retention, settings.job_max_age_seconds))


class Queued(NamedTuple):
    """One queued job's record, as the ingress writes it."""

    id: str
    meta: bytes
    envelope: bytes


class EventWriter:
    """The ingress's side: the record of each job it queues, written by record.lua in the round trip
    that queues it (Redis broker) or just before publishing (any other broker)."""

    def __init__(self, settings: Settings, cipher: TokenCipher | None = None) -> None:
        self.enabled = settings.event_max > 0
        self._max = settings.event_max
        self._retention = settings.event_retention
        self._envelope_ttl = envelope_ttl(settings)
        self._cipher = cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> EventWriter:
        return cls(settings, history_cipher(settings) if settings.event_max > 0 else None)

    def queued(
        self, task_name: str, kwargs: dict[str, Any], event: AnyEvent | None, queue: str, message: bytes
    ) -> Queued | None:
        """The record of a job about to be queued; `message` is what the broker gets (the signed job).
        None when the history is off or the job is not one of the two kinds."""
        kind = _KINDS.get(task_name)
        key = kwargs.get("idempotency_key")
        if not self.enabled or kind is None or not isinstance(key, str):
            return None
        event_type = str(kwargs.get("event_type", ""))
        handler = str(kwargs.get("job", event_type)) if kind == "action_job" else event_type
        context = kwargs.get("context")
        ids: tuple[str, str, str, str, str]
        if event is not None and not context:
            ids = (event.account_id, event.workspace_id, event.project_id, event.resource_id, event.user_id)
        else:  # an action step may omit its context: its interaction's first call fills the gaps
            found = EventIds.of_event(event) if event is not None else EventIds.from_body(str(kwargs.get("body", "")))
            if isinstance(context, dict):
                found = found.or_else(EventIds.from_mapping(context))
            ids = found.as_tuple()
        received = kwargs.get("received_at")
        meta = meta_json(
            kind=kind,
            event_type=event_type,
            handler=handler,
            ids=ids,
            received_at=float(received) if isinstance(received, int | float) else time.time(),
            queue=queue,
            trace_id=tracing.trace_id() if tracing.ACTIVE else None,
        )
        if kind == "webhook":
            envelope = message
        elif self._cipher is not None:
            envelope = self._cipher.encrypt(message)  # form answers: sealed, as the token store seals tokens
        else:
            envelope = b""
        return Queued(key, meta, envelope)

    def script_call(self, items: Sequence[Queued]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of record.lua for `items`."""
        args: list[Any] = [EVENT_KEY_PREFIX, time.time(), self._retention, self._max, self._envelope_ttl]
        for item in items:
            args += (item.id, item.meta, item.envelope)
        return [event_index_key()], args

    async def write(self, client: redis.asyncio.Redis, items: Sequence[Queued]) -> None:
        """Store `items` in one call (the path of brokers other than Redis)."""
        keys, args = self.script_call(items)
        await client.eval(RECORD_LUA, len(keys), *keys, *args)


def signed_envelope(task_name: str, signed: dict[str, Any]) -> bytes:
    """What a non-Redis broker's path keeps as an event's envelope: the task and its signed kwargs."""
    return orjson.dumps({"task": task_name, "kwargs": signed})


class AttemptMark:
    """A run under way: the record it is written to, its attempt's field, and when it started. Built once
    per task, so the key and field are too (the worker's hot path)."""

    __slots__ = ("field", "key", "number", "started_at", "task_id")

    def __init__(self, event_id: str, task_id: str, number: int, started_at: float) -> None:
        self.key = event_key(event_id)
        self.field = f"a:{task_id}:{number}"
        self.task_id = task_id
        self.number = number
        self.started_at = started_at

    def attempt(self, status: Status, error: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "number": self.number,
            "task_id": self.task_id,
            "started_at": self.started_at,
            "status": status,
        }
        if status != "running":
            data["duration_ms"] = round((time.time() - self.started_at) * 1000, 1)
        if error:
            data["error"] = error
        return orjson.dumps(data)


class EventHistory:
    """The workers' and the CLI's side (synchronous): status updates, listing, the kept signed jobs."""

    def __init__(
        self, client: redis.Redis, *, max_events: int, retention: int, cipher: TokenCipher | None = None
    ) -> None:
        self._redis = client
        self.enabled = max_events > 0
        self._max = max_events
        self._retention = retention
        self._cipher = cipher
        self._update = client.register_script(_UPDATE_LUA)

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> EventHistory:
        return cls(
            client or sync_client(settings.queue_redis_url, "worker"),
            max_events=settings.event_max,
            retention=settings.event_retention,
            cipher=history_cipher(settings),
        )

    # -- the workers' writes ---------------------------------------------------------------------

    def running(self, event_id: str, task_id: str, number: int) -> AttemptMark | None:
        return AttemptMark(event_id, task_id, number, time.time()) if self.enabled else None

    @staticmethod
    def started(mark: AttemptMark | None) -> RecordUpdate | None:
        """The update marking `mark`'s run as started (for the completion check's round trip)."""
        if mark is None:
            return None
        return mark.key, ("s", "running", mark.field, mark.attempt("running"))

    @staticmethod
    def finished(
        mark: AttemptMark | None, status: Status, error: str | None = None, reason: str | None = None
    ) -> RecordUpdate | None:
        """The update recording how `mark`'s run ended (`error`: the exception's class name only)."""
        if mark is None:
            return None
        fields: tuple[str | bytes, ...] = ("s", status, mark.field, mark.attempt(status, error))
        if reason:
            fields += ("why", reason)
        return mark.key, fields

    @staticmethod
    def parked(mark: AttemptMark | None) -> RecordUpdate | None:
        """`mark`'s run did not start after all (an ordered job waiting for its key's earlier ones):
        queued again, its attempt entry removed."""
        if mark is None:
            return None
        return mark.key, ("s", "queued", mark.field, "")

    def status(self, event_id: str, status: Status, reason: str | None = None) -> RecordUpdate | None:
        """A status change with no run of its own (held before running, dead-lettered unrun)."""
        if not self.enabled:
            return None
        fields: tuple[str | bytes, ...] = ("s", status) + (("why", reason) if reason else ())
        return event_key(event_id), fields

    def apply(self, update: RecordUpdate | None) -> None:
        if update is not None:
            self._update(keys=[update[0]], args=list(update[1]))

    # -- reading -----------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._redis.zcard(event_index_key()))

    def _load_many(self, ids: list[str]) -> list[EventRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for event_id in ids:
            pipe.hgetall(event_key(event_id))
        found = []
        for event_id, raw in zip(ids, pipe.execute(), strict=True):
            if raw:
                record = EventRecord.from_hash(event_id, _decoded(raw))
                if record is not None:
                    found.append(record)
        return found

    def newest(self, since: float | None = None, until: float | None = None) -> Iterator[EventRecord]:
        """Every record acknowledged within [since, until], newest first, read in batches."""
        high: float | str = "+inf" if until is None else until
        low: float | str = "-inf" if since is None else since
        offset = 0
        while True:
            ids = _ids(self._redis.zrevrangebyscore(event_index_key(), high, low, start=offset, num=_BATCH))
            if not ids:
                return
            yield from self._load_many(ids)
            offset += len(ids)

    def find(self, where: EventFilter, limit: int | None = None) -> list[EventRecord]:
        """The records `where` matches, newest first, at most `limit`."""
        found: list[EventRecord] = []
        for record in self.newest(where.since, where.until):
            if where.matches(
                event_type=record.type,
                account=record.account_id,
                workspace=record.workspace_id,
                resource=record.resource_id,
                status=record.status,
                at=record.received_at,
            ):
                found.append(record)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def get(self, id_or_prefix: str) -> EventRecord | None:
        """By id, or by a prefix that matches exactly one id (at least 6 characters)."""
        if not id_or_prefix:
            return None
        exact = self._load_many([id_or_prefix])
        if exact:
            return exact[0]
        if len(id_or_prefix) < 6 or any(c in id_or_prefix for c in "*?[]\\"):
            return None
        matches = _ids(x for x, _ in self._redis.zscan_iter(event_index_key(), match=f"{id_or_prefix}*"))
        unique = sorted(set(matches))
        found = self._load_many(unique) if len(unique) == 1 else []
        return found[0] if found else None

    # -- replay ------------------------------------------------------------------------------

    def signed_job(self, record: EventRecord) -> tuple[str, dict[str, Any]]:
        """The task and the signed kwargs kept for `record`, as the ingress queued them. ReplayRefused,
        saying why, when none is kept or it cannot be opened."""
        raw = self._redis.get(event_envelope_key(record.id))
        if raw is None:
            if record.kind == "action_job":
                raise ReplayRefused(
                    "its signed job was not kept: action jobs carry form answers and are kept only sealed, with "
                    "FRAMEIO_KIT_ENCRYPTION_KEYS set for the ingress (or it is older than the retention or "
                    "FRAMEIO_KIT_JOB_MAX_AGE)"
                )
            raise ReplayRefused(
                "its signed job is no longer kept (older than FRAMEIO_KIT_EVENT_RETENTION or FRAMEIO_KIT_JOB_MAX_AGE)"
            )
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if not data.startswith(b"{"):
            if self._cipher is None:
                raise ReplayRefused(
                    "its signed job is sealed: set FRAMEIO_KIT_ENCRYPTION_KEYS (the ingress's) to open it"
                )
            try:
                data = self._cipher.decrypt(data)
            except Exception as exc:  # TokenUnreadable: no configured key opens it
                raise ReplayRefused(f"its signed job cannot be opened: {exc}") from None
        try:
            plain = orjson.loads(data)
            if isinstance(plain, dict) and "headers" in plain:
                return task_of(data)
            task, kwargs = plain["task"], plain["kwargs"]
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError):
            raise ReplayRefused("its kept signed job does not parse") from None
        if not isinstance(task, str) or not isinstance(kwargs, dict):
            raise ReplayRefused("its kept signed job does not parse")
        return task, kwargs

    def replayed(self, record: EventRecord) -> None:
        """Queued again by a replay: the next run is recorded as a further attempt of the same event."""
        key = event_key(record.id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(key, "why")
        self._update(keys=[key], args=["s", "queued", "r", str(record.replays + 1)], client=pipe)
        pipe.execute()


def _decoded(raw: dict[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }


def _ids(raw: Any) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
