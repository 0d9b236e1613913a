"""The dead-letter store: jobs of every kind (webhooks, action jobs) whose handler gave up, with their
error and attempt history, and the ids of refused jobs (unsigned, expired or malformed: never their content).

A dead letter keeps the signed job exactly as the worker received it (kwargs, issued-at, signature). A replay
re-sends that envelope unchanged, and only when it verifies with the configured keys and has not expired:
anyone who can write to Redis can write a dead letter, and the replay command must not sign for them.

Bounded (FRAMEIO_KIT_DEAD_LETTER_MAX entries, oldest dropped first) and kept for
FRAMEIO_KIT_DEAD_LETTER_RETENTION seconds. Also owns the per-job attempt history and completion marker,
which are queue traffic: they live in the broker's Redis, beside the queue and the in-flight ledger they
are updated with (`Settings.queue_redis_url`); the dead letters live in REDIS_URL.
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

import redis
from pydantic import BaseModel, ValidationError, model_validator
from redis.commands.core import Script

from shared.errors import ReplayRefused
from shared.jobs.contract import HANDLE_WEBHOOK, JOB_MODELS, ActionJob, AnyJob, WebhookJob
from shared.jobs.signing import JobSigner, issued_at, unsigned
from shared.logs import printable
from shared.redis_client import sync_client
from shared.redis_direct import SyncScriptCaller
from shared.redis_keys import (
    attempts_key,
    dead_letter_index_key,
    dead_letter_key,
    done_key,
    ledger_due_key,
    ledger_key,
)
from shared.settings import Settings

Reason = Literal["exhausted", "permanent", "no_handler", "unsigned", "expired", "malformed", "rate_limited", "timeout"]
"""rate_limited: deferred by Frame.io's rate limit past FRAMEIO_KIT_RATE_LIMIT_MAX_DEFER; timeout: the last
attempt ran past the handler's time limit (docs/limits.md)."""
RecordUpdate = tuple[str, tuple[str | bytes, ...]]
"""A hash and field/value pairs set on it only while it exists: the event history's update of one
event (shared/events/history.py), applied in the round trip of the completion check or marker."""
REFUSED: frozenset[Reason] = frozenset({"unsigned", "expired", "malformed"})
"""Reasons of jobs that were never run: no ingress signed them, their signature expired, or they do not
parse. Never replayed."""
_TRACEBACK_CHARS = 4000

# One script call per task on each side of the handler (begin.lua, complete.lua): a round trip
# with no client-side pipeline or MULTI/EXEC to build and parse (docs/performance.md).
_BEGIN_LUA = resources.files("shared.jobs").joinpath("begin.lua").read_text(encoding="utf-8")
_COMPLETE_LUA = resources.files("shared.jobs").joinpath("complete.lua").read_text(encoding="utf-8")


class Attempt(BaseModel):
    """One failed run of a handler."""

    number: int
    task_id: str
    finished_at: float
    duration_ms: float
    error: str
    traceback: str = ""

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        number: int,
        task_id: str,
        started: float,
        scrub: Callable[[str], str] = str,
    ) -> Attempt:
        """`scrub` removes what must not be stored (form answers, tokens) from the error and traceback."""
        tb = "".join(traceback.format_exception(exc))
        return cls(
            number=number,
            task_id=task_id,
            finished_at=time.time(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            error=scrub(describe_error(exc)),
            traceback=scrub(tb[-_TRACEBACK_CHARS:]),
        )


class DeadLetter(BaseModel):
    """A dead-lettered job: enough to inspect it and to queue it again to the task it came from.

    `signed` is the job's kwargs as the worker received them, envelope included: what a replay sends.
    `job` is read from it (stored on its own only by versions before the envelope was kept, which
    therefore cannot be replayed). A refused job (reason in REFUSED) keeps only its task name and
    task id, never its content.
    """

    id: str
    task: str = HANDLE_WEBHOOK
    task_id: str = ""
    reason: Reason
    error: str
    dead_lettered_at: float
    attempts: list[Attempt]
    job: WebhookJob | ActionJob | None = None
    signed: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _job_of_its_task(cls, data: Any) -> Any:
        # Both job models ignore unknown fields, so the task name, not the shape, says which one it is.
        if not isinstance(data, dict):
            return data
        model = JOB_MODELS.get(str(data.get("task", HANDLE_WEBHOOK)), WebhookJob)
        if isinstance(data.get("signed"), dict) and data.get("job") is None:
            data = {**data, "job": model.model_validate(unsigned(data["signed"]))}
        elif isinstance(data.get("job"), dict):
            data = {**data, "job": model.model_validate(data["job"])}
        return data

    @property
    def replayable(self) -> bool:
        """Worth offering for replay: a job that ran and failed (whether it verifies is `replay_check`'s call)."""
        return self.job is not None and self.reason not in REFUSED

    @property
    def issued_at(self) -> int | None:
        """When the ingress signed the stored job (Unix seconds), if a signed job is stored."""
        return issued_at(self.signed) if self.signed is not None else None

    def replay_check(self, signer: JobSigner, now: float | None = None) -> str | None:
        """Why this dead letter must not be replayed, or None when its stored signed job verifies."""
        if self.reason in REFUSED or self.job is None:
            return f"the workers refused it ({self.reason}) and kept no job"
        if self.task not in JOB_MODELS:
            return f"its task {self.task!r} is not one a replay can queue"
        if self.signed is None:
            return (
                "it holds no signed job (dead-lettered by an older frameio-kit, or not by a worker), so it "
                "cannot be verified and is not replayed"
            )
        verdict = signer.verify(self.task, self.signed, now)
        if verdict == "expired":
            return (
                f"its signed job is older than FRAMEIO_KIT_JOB_MAX_AGE ({signer.max_age} s): workers would refuse "
                "it; to replay it, raise FRAMEIO_KIT_JOB_MAX_AGE for the workers and this command"
            )
        if verdict != "valid":
            return (
                f"its signed job does not verify with FRAMEIO_KIT_JOB_SIGNING_KEYS (signature {verdict}): not "
                "written by a worker, or signed with a retired key (add that key back to the list of the workers "
                "and this command to replay it)"
            )
        return None

    def stored_json(self) -> str:
        """What the store keeps: the signed job once (the job is read back from it), not twice."""
        return self.model_dump_json(exclude={"job"} if self.signed is not None else None)

    def shown(self) -> dict[str, Any]:
        """The form `dead-letters show` prints: the job and its issued-at, not the envelope's signature."""
        data = self.model_dump(mode="json", exclude={"signed"})
        data["signed_job"] = {"stored": self.signed is not None, "issued_at": self.issued_at}
        return data

    @property
    def summary(self) -> str:
        """One line for `dead-letters list`, with every control character escaped."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.dead_lettered_at))
        what = self.job.ids if self.job is not None else f"{self.task} task={self.task_id}"
        return printable(f"{self.id}  {stamp}  {what}  attempts={len(self.attempts)}  {self.reason}: {self.error}")


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ids(raw: Any) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]


def dead_letter_id(idempotency_key: str) -> str:
    """Short, stable id: the same event dead-lettered again (after a replay) replaces its entry."""
    return idempotency_key[:16]


class DeadLetterStore:
    """Dead letters (in `client`), attempt histories and completion markers (in `queue_client`, the
    broker's Redis; `client` when not given) through synchronous clients."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        max_entries: int,
        retention: int,
        completion_ttl: int,
        stale_after: float = 0,
        queue_client: redis.Redis | None = None,
    ) -> None:
        self._redis = client
        self._queue = queue_client if queue_client is not None else client
        self._max = max_entries
        self._retention = retention
        self._completion_ttl = completion_ttl
        self._stale_after = stale_after
        self._begin = self._queue.register_script(_BEGIN_LUA)
        self._complete = self._queue.register_script(_COMPLETE_LUA)
        self._due_key = ledger_due_key()
        self._ledger_key = ledger_key()
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> DeadLetterStore:
        store = client or sync_client(settings.redis_url, "worker")
        same = settings.queue_redis_url == settings.redis_url
        return cls(
            store,
            max_entries=settings.dead_letter_max,
            retention=settings.dead_letter_retention,
            completion_ttl=settings.completion_ttl,
            stale_after=settings.ledger_stale_after,
            queue_client=store if same else sync_client(settings.queue_redis_url, "worker"),
        )

    # -- completion and attempts ------------------------------------------------------------

    def _call(self, script: Script, keys: tuple[str, ...], args: tuple[str | bytes | int | float, ...]) -> Any:
        """One EVALSHA on a connection the calling thread keeps (shared/redis_direct.py): these two
        calls per task are the worker's only Redis work of its own."""
        caller: SyncScriptCaller | None = getattr(self._local, "caller", None)
        if caller is None:
            caller = self._local.caller = SyncScriptCaller(self._queue)
        return caller.call(script, keys, args)

    def is_done(self, idempotency_key: str, record: RecordUpdate | None = None) -> bool:
        """Completed already? Also pushes back the ledger deadline of an event about to run, in
        the same round trip, so the ledger sweep leaves a running handler alone, and applies `record`
        (the event history's update) when it runs."""
        keys: tuple[str, ...] = (done_key(idempotency_key), self._due_key)
        args: tuple[str | bytes | float, ...] = (idempotency_key, time.time() + self._stale_after)
        if record is not None:
            keys, args = (*keys, record[0]), (*args, *record[1])
        return bool(self._call(self._begin, keys, args))

    def mark_done(self, idempotency_key: str, record: RecordUpdate | None = None, reset: str | None = None) -> None:
        """Completed: a redelivery of this event (a crash before the ack) will not run it again. In the
        same round trip: `record` (the event history's update) and `reset`, a counter deleted (the
        handler's consecutive failures)."""
        keys: tuple[str, ...] = (done_key(idempotency_key), attempts_key(idempotency_key), self._ledger_key)
        keys = (*keys, self._due_key)
        args: tuple[str | bytes | int, ...] = (idempotency_key, self._completion_ttl)
        if record is not None or reset is not None:
            keys = (*keys, record[0] if record is not None else "")
            args = (*args, *(record[1] if record is not None else ()))
            if reset is not None:
                keys = (*keys, reset)
        self._call(self._complete, keys, args)

    def release(self, idempotency_key: str) -> None:
        """Given up without a dead letter: take the event out of the in-flight ledger."""
        pipe = self._queue.pipeline(transaction=True)
        pipe.hdel(ledger_key(), idempotency_key)
        pipe.zrem(ledger_due_key(), idempotency_key)
        pipe.execute()

    def record_attempt(self, idempotency_key: str, attempt: Attempt) -> None:
        key = attempts_key(idempotency_key)
        pipe = self._queue.pipeline(transaction=True)
        pipe.rpush(key, attempt.model_dump_json())
        pipe.expire(key, self._retention)
        pipe.execute()

    def attempts(self, idempotency_key: str) -> list[Attempt]:
        raw = self._queue.lrange(attempts_key(idempotency_key), 0, -1)
        return [Attempt.model_validate_json(x) for x in raw]

    # -- dead letters -----------------------------------------------------------------------

    def dead_letter(
        self, job: AnyJob, reason: Reason, error: str, task_id: str = "", signed: dict[str, Any] | None = None
    ) -> DeadLetter:
        """Move `job` and its attempt history into the store, with `signed`: the kwargs exactly as the
        worker received and verified them (what a replay re-sends)."""
        letter = DeadLetter(
            id=dead_letter_id(job.idempotency_key),
            task=job.task_name,
            task_id=task_id,
            reason=reason,
            error=error,
            dead_lettered_at=time.time(),
            attempts=self.attempts(job.idempotency_key),
            job=job,
            signed=signed,
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(dead_letter_key(letter.id), letter.stored_json(), ex=self._retention)
        pipe.zadd(dead_letter_index_key(), {letter.id: letter.dead_lettered_at})
        # Stored before the queue side lets go of it: a crash in between leaves the event in the ledger,
        # which runs it again (and dead-letters it again under the same id), never loses it.
        if self._queue is self._redis:
            self._forget(pipe, job.idempotency_key)
            pipe.execute()
        else:
            pipe.execute()
            queue_pipe = self._queue.pipeline(transaction=True)
            self._forget(queue_pipe, job.idempotency_key)
            queue_pipe.execute()
        self._trim()
        return letter

    @staticmethod
    def _forget(pipe: Any, idempotency_key: str) -> None:
        pipe.delete(attempts_key(idempotency_key))
        pipe.hdel(ledger_key(), idempotency_key)
        pipe.zrem(ledger_due_key(), idempotency_key)

    def refused(self, task: str, task_id: str, reason: Reason, error: str) -> DeadLetter:
        """Record a job that was not run (unsigned, expired, malformed): its task name and task id only."""
        task_id = task_id[:64]
        letter = DeadLetter(
            id=hashlib.sha256(f"{task}\n{task_id}".encode()).hexdigest()[:16],
            task=task[:64],
            task_id=task_id,
            reason=reason,
            error=error,
            dead_lettered_at=time.time(),
            attempts=[],
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(dead_letter_key(letter.id), letter.model_dump_json(), ex=self._retention)
        pipe.zadd(dead_letter_index_key(), {letter.id: letter.dead_lettered_at})
        pipe.execute()
        self._trim()
        return letter

    def _trim(self) -> None:
        index = dead_letter_index_key()
        expired = self._redis.zrangebyscore(index, "-inf", time.time() - self._retention)
        overflow = self._redis.zcard(index) - self._max
        extra = self._redis.zrange(index, 0, overflow - 1) if overflow > 0 else []
        drop = set(_ids(expired)) | set(_ids(extra))
        if drop:
            self._remove(drop)

    def _remove(self, ids: set[str]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(dead_letter_index_key(), *ids)
        pipe.delete(*(dead_letter_key(i) for i in ids))
        pipe.execute()

    def count(self) -> int:
        return int(self._redis.zcard(dead_letter_index_key()))

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        ids = _ids(self._redis.zrevrange(dead_letter_index_key(), 0, limit - 1))
        letters = [self._load(i) for i in ids]
        return [x for x in letters if x is not None]

    def _load(self, letter_id: str) -> DeadLetter | None:
        raw = self._redis.get(dead_letter_key(letter_id))
        if not raw:
            return None
        try:
            return DeadLetter.model_validate_json(raw)
        except ValidationError:
            # Written by something other than a worker: listed (so it can be seen and purged), never replayed.
            return DeadLetter(
                id=letter_id[:64],
                task="-",
                reason="malformed",
                error="stored dead letter does not parse",
                dead_lettered_at=0.0,
                attempts=[],
            )

    def get(self, id_or_prefix: str) -> DeadLetter | None:
        """By id, or by a prefix that matches exactly one id."""
        letter = self._load(id_or_prefix)
        if letter is not None or not id_or_prefix:
            return letter
        ids = _ids(self._redis.zrange(dead_letter_index_key(), 0, -1))
        matches = [i for i in ids if i.startswith(id_or_prefix)]
        return self._load(matches[0]) if len(matches) == 1 else None

    def replay(self, letter: DeadLetter, signer: JobSigner, send: Callable[[str, dict[str, Any], AnyJob], str]) -> str:
        """Queue the stored signed job again, unchanged, with a fresh attempt count, then drop the letter.

        Raises ReplayRefused, sending nothing, unless the signed job verifies with `signer` (the keys
        of FRAMEIO_KIT_JOB_SIGNING_KEYS) and is within its max age: the replay never signs anything.
        Sent before it is removed: a crash in between leaves it here, and replaying it twice is
        harmless once it has completed (the completion marker skips the second run). A dead-lettered
        event has no completion marker (only a completed run writes one), so the replay runs.
        """
        refusal = letter.replay_check(signer)
        if refusal is not None or letter.signed is None or letter.job is None:
            raise ReplayRefused(refusal or "it holds no signed job")
        # The ids shown and the attempts cleared are the verified job's, never a separately stored copy.
        job = JOB_MODELS[letter.task].model_validate(unsigned(letter.signed))
        self._queue.delete(attempts_key(job.idempotency_key))
        task_id = send(letter.task, letter.signed, job)
        self._remove({letter.id})
        return task_id

    def purge(self) -> int:
        ids = set(_ids(self._redis.zrange(dead_letter_index_key(), 0, -1)))
        if ids:
            self._remove(ids)
        return len(ids)
