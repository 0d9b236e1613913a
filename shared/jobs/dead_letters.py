"""The dead-letter store: webhook events whose handler gave up, with their error and attempt history.

Bounded (FRAMEIO_KIT_DEAD_LETTER_MAX entries, oldest dropped first) and kept for
FRAMEIO_KIT_DEAD_LETTER_RETENTION seconds. Also owns the per-event attempt history and completion marker.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any, Literal

import redis
from pydantic import BaseModel

from shared.jobs.contract import WebhookJob
from shared.redis_client import sync_client
from shared.redis_keys import (
    attempts_key,
    dead_letter_index_key,
    dead_letter_key,
    done_key,
    ledger_due_key,
    ledger_key,
)
from shared.settings import Settings

Reason = Literal["exhausted", "permanent", "no_handler"]
_TRACEBACK_CHARS = 4000


class Attempt(BaseModel):
    """One failed run of a handler."""

    number: int
    task_id: str
    finished_at: float
    duration_ms: float
    error: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, *, number: int, task_id: str, started: float) -> Attempt:
        tb = "".join(traceback.format_exception(exc))
        return cls(
            number=number,
            task_id=task_id,
            finished_at=time.time(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            error=describe_error(exc),
            traceback=tb[-_TRACEBACK_CHARS:],
        )


class DeadLetter(BaseModel):
    """A dead-lettered webhook event: enough to inspect it and to queue it again."""

    id: str
    reason: Reason
    error: str
    dead_lettered_at: float
    attempts: list[Attempt]
    job: WebhookJob

    @property
    def summary(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.dead_lettered_at))
        return (
            f"{self.id}  {stamp}  {self.job.event_type}  resource={self.job.resource_id}  "
            f"attempts={len(self.attempts)}  {self.reason}: {self.error}"
        )


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ids(raw: Any) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]


def dead_letter_id(idempotency_key: str) -> str:
    """Short, stable id: the same event dead-lettered again (after a replay) replaces its entry."""
    return idempotency_key[:16]


class DeadLetterStore:
    """Dead letters, attempt histories and completion markers in Redis (synchronous client)."""

    def __init__(
        self, client: redis.Redis, *, max_entries: int, retention: int, completion_ttl: int, stale_after: float = 0
    ) -> None:
        self._redis = client
        self._max = max_entries
        self._retention = retention
        self._completion_ttl = completion_ttl
        self._stale_after = stale_after

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> DeadLetterStore:
        return cls(
            client or sync_client(settings.redis_url, "worker"),
            max_entries=settings.dead_letter_max,
            retention=settings.dead_letter_retention,
            completion_ttl=settings.completion_ttl,
            stale_after=settings.ledger_stale_after,
        )

    # -- completion and attempts ------------------------------------------------------------

    def is_done(self, idempotency_key: str) -> bool:
        """Completed already? Also pushes back the ledger deadline of an event about to run, in
        the same round trip, so the ledger sweep leaves a running handler alone."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(done_key(idempotency_key))
        pipe.zadd(ledger_due_key(), {idempotency_key: time.time() + self._stale_after}, xx=True)
        done, _ = pipe.execute()
        return bool(done)

    def mark_done(self, idempotency_key: str) -> None:
        """Completed: a redelivery of this event (a crash before the ack) will not run it again."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(done_key(idempotency_key), "1", ex=self._completion_ttl)
        pipe.delete(attempts_key(idempotency_key))
        pipe.hdel(ledger_key(), idempotency_key)
        pipe.zrem(ledger_due_key(), idempotency_key)
        pipe.execute()

    def release(self, idempotency_key: str) -> None:
        """Given up without a dead letter: take the event out of the in-flight ledger."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(ledger_key(), idempotency_key)
        pipe.zrem(ledger_due_key(), idempotency_key)
        pipe.execute()

    def record_attempt(self, idempotency_key: str, attempt: Attempt) -> None:
        key = attempts_key(idempotency_key)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, attempt.model_dump_json())
        pipe.expire(key, self._retention)
        pipe.execute()

    def attempts(self, idempotency_key: str) -> list[Attempt]:
        raw = self._redis.lrange(attempts_key(idempotency_key), 0, -1)
        return [Attempt.model_validate_json(x) for x in raw]

    # -- dead letters -----------------------------------------------------------------------

    def dead_letter(self, job: WebhookJob, reason: Reason, error: str) -> DeadLetter:
        """Move `job` and its attempt history into the store."""
        letter = DeadLetter(
            id=dead_letter_id(job.idempotency_key),
            reason=reason,
            error=error,
            dead_lettered_at=time.time(),
            attempts=self.attempts(job.idempotency_key),
            job=job,
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(dead_letter_key(letter.id), letter.model_dump_json(), ex=self._retention)
        pipe.zadd(dead_letter_index_key(), {letter.id: letter.dead_lettered_at})
        pipe.delete(attempts_key(job.idempotency_key))
        pipe.hdel(ledger_key(), job.idempotency_key)
        pipe.zrem(ledger_due_key(), job.idempotency_key)
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
        return DeadLetter.model_validate_json(raw) if raw else None

    def get(self, id_or_prefix: str) -> DeadLetter | None:
        """By id, or by a prefix that matches exactly one id."""
        letter = self._load(id_or_prefix)
        if letter is not None or not id_or_prefix:
            return letter
        ids = _ids(self._redis.zrange(dead_letter_index_key(), 0, -1))
        matches = [i for i in ids if i.startswith(id_or_prefix)]
        return self._load(matches[0]) if len(matches) == 1 else None

    def replay(self, letter: DeadLetter, send: Callable[[WebhookJob], str]) -> str:
        """Queue the event again with a fresh attempt count, then drop it from the store.

        Sent before it is removed: a crash in between leaves it here, and replaying it twice is
        harmless once it has completed (the completion marker skips the second run).
        """
        self._redis.delete(attempts_key(letter.job.idempotency_key))
        task_id = send(letter.job)
        self._remove({letter.id})
        return task_id

    def purge(self) -> int:
        ids = set(_ids(self._redis.zrange(dead_letter_index_key(), 0, -1)))
        if ids:
            self._remove(ids)
        return len(ids)
