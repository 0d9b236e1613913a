"""Paused handlers: who paused each (the breaker or an operator) and when, the jobs held while it is
paused, its consecutive failures and its probe lock. Shared by the workers (workers/breaker.py), the
`frameio-kit handlers` CLI and the /metrics gauges.

On the queue's Redis (`Settings.queue_redis_url`): a held job is a queued job set aside, so it lives
where the queue and the in-flight ledger live, and leaves the ledger and enters its handler's held list
in one script (hold.lua); resuming puts each back on its queue with its ledger entry (requeue.lua), or
through Celery's producer for a broker other than Redis. Held jobs are re-sent as they were received,
signature and all: nothing here signs, and the workers verify them again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any, Literal

import redis
import redis.asyncio
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ValidationError

from shared.jobs.contract import JOB_MODELS
from shared.jobs.dead_letters import RecordUpdate
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.signing import unsigned
from shared.redis_keys import (
    event_key,
    handler_failures_key,
    handler_probe_key,
    held_jobs_key,
    ledger_due_key,
    ledger_key,
    paused_handlers_key,
)
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.worker")

_HOLD_LUA = resources.files("shared.events").joinpath("hold.lua").read_text(encoding="utf-8")
_REQUEUE_LUA = resources.files("shared.events").joinpath("requeue.lua").read_text(encoding="utf-8")
# KEYS: the paused-handler hash, the handler's failure count, its probe lock. ARGV: the handler, "1" to
# resume only a pause the breaker made (an operator's stays). 1 when it was paused and is resumed.
_RESUME_LUA = """
local pause = redis.call('HGET', KEYS[1], ARGV[1])
if not pause then return 0 end
if ARGV[2] == '1' and not string.find(pause, '"by":"breaker"', 1, true) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""
_BATCH = 200
_FAILURES_TTL = 86400

Send = Callable[[str, dict[str, Any], str, str], str]
"""Publish an already signed job: (task name, signed kwargs, short description, queue) -> task id."""


class PauseInfo(BaseModel):
    """Why a handler is paused. `breaker`: after `failures` consecutive failures, resumed by a probe that
    succeeds or by an operator; `operator`: by `frameio-kit handlers pause`, until `handlers resume`."""

    by: Literal["breaker", "operator"]
    at: float
    failures: int | None = None


class HeldJob(BaseModel):
    """A job set aside while its handler is paused: the signed kwargs as the worker received them."""

    task: str
    queue: str
    key: str
    signed: dict[str, Any]


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _pauses(raw: Mapping[Any, Any]) -> dict[str, PauseInfo]:
    found = {}
    for name, value in raw.items():
        try:
            found[_text(name)] = PauseInfo.model_validate_json(value)
        except ValidationError:
            found[_text(name)] = PauseInfo(by="operator", at=0.0)  # written by hand: still paused
    return found


class HandlerPauses:
    """Synchronous access (workers, CLI) to the paused-handler keys on the queue's Redis."""

    def __init__(self, client: redis.Redis, *, broker_is_redis: bool, ledger_stale_after: float) -> None:
        self._redis = client
        self._broker_is_redis = broker_is_redis
        self._stale_after = ledger_stale_after
        self._hold = client.register_script(_HOLD_LUA)
        self._requeue = client.register_script(_REQUEUE_LUA)
        self._resume = client.register_script(_RESUME_LUA)

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis) -> HandlerPauses:
        return cls(client, broker_is_redis=settings.broker_is_redis, ledger_stale_after=settings.ledger_stale_after)

    def paused(self) -> dict[str, PauseInfo]:
        return _pauses(self._redis.hgetall(paused_handlers_key()))

    def pause(self, handler: str, info: PauseInfo, *, keep_existing: bool = False) -> bool:
        """Pause `handler`; with `keep_existing` (the breaker) an operator's pause is left as it is.
        True when this call paused it."""
        value = info.model_dump_json(exclude_none=True)
        if keep_existing:
            return bool(self._redis.hsetnx(paused_handlers_key(), handler, value))
        self._redis.hset(paused_handlers_key(), handler, value)
        return True

    def resume(self, handler: str, *, only_breaker: bool = False) -> bool:
        """Un-pause `handler` and start its failure count again; True when it was paused. `only_breaker`
        (a probe that passed): only a pause the breaker made, never an operator's. The caller then queues
        its held jobs again (`requeue`)."""
        keys = [paused_handlers_key(), handler_failures_key(handler), handler_probe_key(handler)]
        return bool(self._resume(keys=keys, args=[handler, "1" if only_breaker else "0"]))

    def count_failure(self, handler: str) -> int:
        """One more consecutive failed attempt of `handler`; the new count."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(handler_failures_key(handler))
        pipe.expire(handler_failures_key(handler), _FAILURES_TTL)
        count, _ = pipe.execute()
        return int(count)

    def failures(self, handlers: Iterable[str]) -> dict[str, int]:
        names = list(handlers)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.get(handler_failures_key(name))
        return {name: int(value or 0) for name, value in zip(names, pipe.execute(), strict=True)}

    def held_counts(self, handlers: Iterable[str]) -> dict[str, int]:
        names = list(handlers)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(held_jobs_key(name))
        return {name: int(n) for name, n in zip(names, pipe.execute(), strict=True)}

    def take_probe(self, handler: str, event_id: str, seconds: float, *, only_new: bool = False) -> bool:
        """True for the one job let through as the probe of `handler` in the next `seconds`: the first to
        ask, or the job the prober released for it (its id is the lock's value). `only_new`: only a new
        lock (the prober, choosing which held job to release)."""
        key = handler_probe_key(handler)
        ttl = max(1, int(seconds * 1000))
        if only_new:
            return bool(self._redis.set(key, event_id, nx=True, px=ttl))
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(key, event_id, nx=True, px=ttl)
        pipe.get(key)
        taken, holder = pipe.execute()
        return bool(taken) or (holder is not None and _text(holder) == event_id)

    def oldest_held(self, handler: str) -> str | None:
        """The event id of the job `handler` has held longest (the next to queue again)."""
        raw = self._redis.lindex(held_jobs_key(handler), -1)
        if raw is None:
            return None
        try:
            return HeldJob.model_validate_json(raw).key
        except ValidationError:
            return None

    def hold(self, handler: str, job: HeldJob, record: RecordUpdate | None) -> int:
        """Set `job` aside while `handler` is paused; the number of jobs it now holds, or -1 when it is no
        longer paused (resumed since the caller looked: nothing was held, run the job)."""
        keys = [
            held_jobs_key(handler),
            ledger_key(),
            ledger_due_key(),
            record[0] if record else event_key(job.key),
            paused_handlers_key(),
        ]
        args: list[Any] = [job.model_dump_json(), job.key, handler, *(record[1] if record else ())]
        return int(self._hold(keys=keys, args=args))

    def requeue(self, handler: str, send: Send | None = None, limit: int | None = None) -> int:
        """Queue `handler`'s held jobs again, oldest first (at most `limit`); how many were queued.

        Redis broker: each back on its queue with its in-flight ledger entry, in one script per batch.
        Any other broker: `send` (Celery's producer), each taken off the list first and put back if the
        publish fails. A held entry that does not parse is dropped with a warning.
        """
        moved = 0
        key = held_jobs_key(handler)
        while limit is None or moved < limit:
            size = _BATCH if limit is None else min(_BATCH, limit - moved)
            raw = self._redis.lrange(key, -size, -1)
            if not raw:
                break
            entries = [bytes(x) if isinstance(x, bytes) else str(x).encode() for x in reversed(raw)]  # oldest first
            moved_now = self._requeue_batch(key, entries, send)
            moved += moved_now
            if moved_now == 0 and len(raw) < size:
                break
        return moved

    def _requeue_batch(self, key: str, entries: list[bytes], send: Send | None) -> int:
        parsed: list[tuple[bytes, HeldJob, str]] = []
        for raw in entries:
            try:
                job = HeldJob.model_validate_json(raw)
                model = JOB_MODELS[job.task]
                describe = model.model_validate(unsigned(job.signed)).describe()
            except (ValidationError, KeyError):
                logger.warning("dropped a held job that does not parse (held list %s)", key)
                self._redis.lrem(key, -1, raw)  # type: ignore[arg-type] # redis-py takes bytes
                continue
            parsed.append((raw, job, describe))
        if not parsed:
            return 0
        if self._broker_is_redis:
            keys = [key, ledger_key(), ledger_due_key()]
            args: list[Any] = [time.time() + self._stale_after]
            for raw, job, describe in parsed:
                keys += (job.queue, event_key(job.key))
                args += (raw, job.key, build_task_message(job.task, job.signed, describe, job.queue))
            return int(self._requeue(keys=keys, args=args))
        if send is None:
            raise ValueError("a broker other than Redis needs a publisher to queue held jobs again")
        moved = 0
        for raw, job, describe in parsed:
            if not self._redis.lrem(key, -1, raw):  # type: ignore[arg-type] # redis-py takes bytes
                continue  # another resumer took it
            self._status(job.key, "queued")  # before the publish: the worker's own status writes come after
            try:
                send(job.task, job.signed, describe, job.queue)
            except BaseException:
                self._redis.rpush(key, raw)
                self._status(job.key, "paused")
                raise
            moved += 1
        return moved

    def _status(self, event_id: str, status: str) -> None:
        """The event's history status, while its record exists (never recreated)."""
        self._redis.eval(
            "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 's', ARGV[1]) end",
            1,
            event_key(event_id),
            status,
        )


def read_pauses(client: redis.Redis) -> tuple[dict[str, PauseInfo], dict[str, int]]:
    """Paused handlers and how many jobs each holds, for a metrics scrape (two round trips)."""
    paused = _pauses(client.hgetall(paused_handlers_key()))
    if not paused:
        return paused, {}
    pipe = client.pipeline(transaction=False)
    for name in paused:
        pipe.llen(held_jobs_key(name))
    return paused, {name: int(n) for name, n in zip(paused, pipe.execute(), strict=True)}


async def aread_pauses(client: redis.asyncio.Redis) -> tuple[dict[str, PauseInfo], dict[str, int]]:
    """`read_pauses` for asyncio clients."""
    paused = _pauses(await client.hgetall(paused_handlers_key()))
    if not paused:
        return paused, {}
    pipe = client.pipeline(transaction=False)
    for name in paused:
        pipe.llen(held_jobs_key(name))
    counts = await pipe.execute()
    return paused, {name: int(n) for name, n in zip(paused, counts, strict=True)}


def pause_families(
    paused: Mapping[str, PauseInfo], held: Mapping[str, int], handlers: Iterable[str]
) -> list[GaugeMetricFamily]:
    """`frameio_kit_handler_paused{handler}` (1 paused, 0 running) for every handler the App registers
    and every paused one, and `frameio_kit_handler_held_jobs{handler}` for the paused ones."""
    gauge = GaugeMetricFamily(
        "frameio_kit_handler_paused",
        "1 while a handler is paused (by the breaker or an operator) and its jobs are held, else 0.",
        labels=["handler"],
    )
    for name in sorted({*handlers, *paused}):
        gauge.add_metric([name], 1.0 if name in paused else 0.0)
    held_gauge = GaugeMetricFamily(
        "frameio_kit_handler_held_jobs",
        "Jobs held for a paused handler, queued again when it resumes.",
        labels=["handler"],
    )
    for name in sorted(paused):
        held_gauge.add_metric([name], float(held.get(name, 0)))
    return [gauge, held_gauge]


def describe_pause(info: PauseInfo) -> str:
    """One phrase for listings: who paused it and since when."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.at)) if info.at else "?"
    if info.by == "breaker":
        return f"paused by the breaker after {info.failures or '?'} consecutive failures, since {stamp}"
    return f"paused by an operator since {stamp}"


class PauseCollector(Collector):
    """The paused-handler gauges of a worker's /metrics, read from Redis at scrape time."""

    def __init__(self, client: redis.Redis, handlers: Callable[[], Iterable[str]]) -> None:
        self._redis = client
        self._handlers = handlers

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            paused, held = read_pauses(self._redis)
        except (redis.RedisError, OSError):
            return []
        return pause_families(paused, held, self._handlers())


class PauseReading:
    """A collector holding one reading's gauges, for a registry rendered once (the ingress's scrape)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._families
