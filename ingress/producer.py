"""Durable, non-blocking enqueue of Celery messages from asyncio.

Celery's own producer is synchronous and would block the event loop, so the ingress writes
standard Celery protocol-2 messages to the Redis list kombu consumes. Concurrent requests are
group-committed: one Lua call per batch records each delivery's de-duplication key and pushes
the new messages, and each request is answered only after the call carrying it has returned.
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import logging
import os
import socket
import time
import uuid
from importlib import resources
from typing import Any, NamedTuple, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

from ingress.deadlines import Deadlines
from shared import tracing
from shared.errors import BrokerUnavailable
from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.jobs.signing import JobSigner
from shared.redis_keys import dedup_key, ledger_due_key, ledger_key

logger = logging.getLogger(__name__)

_MAX_BATCH = 256
_ORIGIN = f"frameio-kit-ingress-{os.getpid()}@{socket.gethostname()}"

# The enqueue script (ingress/enqueue.lua): dedup keys, queue push and ledger entry, atomic per batch.
_ENQUEUE_LUA = resources.files("ingress").joinpath("enqueue.lua").read_text(encoding="utf-8")


class _Ids:
    """UUID-shaped ids, unique per process: a random per-process prefix and a counter.

    Two `uuid.uuid4()` per message are a measurable share of the hot path; Celery and kombu only
    need the ids unique. The prefix is re-drawn in a forked child (uvicorn workers).
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


_ids = _Ids()


_EMBED = orjson.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def build_task_message(
    task_name: str, kwargs: dict[str, Any], kwargsrepr: str, queue: str, signer: JobSigner | None = None
) -> bytes:
    """A Celery protocol-2 message as kombu's Redis transport stores it, its kwargs signed by `signer`
    (workers refuse unsigned jobs; only tests build one without)."""
    task_id = _ids.next()
    # The signed kwargs are serialised once and spliced into the body: no second JSON pass.
    kwargs_json = signer.signed_json(task_name, kwargs) if signer is not None else orjson.dumps(kwargs)
    body = b"[[]," + kwargs_json + b"," + _EMBED + b"]"
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": kwargsrepr,
        "origin": _ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        ENQUEUED_AT_HEADER: time.time(),
    }
    if tracing.ACTIVE:
        tracing.inject(headers)
    return orjson.dumps(
        {
            "body": binascii.b2a_base64(body, newline=False).decode("ascii"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": _ids.next(),
            },
        }
    )


class _Expired(Exception):
    """The request's time budget ran out while its message waited for a batch."""


class _Entry(NamedTuple):
    key: str
    message: bytes
    fut: asyncio.Future[bool]


def _expire(fut: asyncio.Future[bool]) -> None:
    # A message still pending is pushed later anyway; its dedup key then absorbs Frame.io's retry.
    if not fut.done():
        fut.set_exception(_Expired())


class RedisProducer:
    """Group-committing producer for a Redis broker. One per process, shared by all requests."""

    def __init__(
        self,
        redis: Redis,
        queue: str,
        *,
        dedup_window: int,
        timeout: float,
        stale_after: float = 1800.0,
        signer: JobSigner | None = None,
    ) -> None:
        self._redis = redis
        self._queue = queue
        self._signer = signer
        self._dedup_window = dedup_window
        self._timeout = timeout
        self._stale_after = stale_after
        self._script = redis.register_script(_ENQUEUE_LUA)
        self._pending: list[_Entry] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._deadlines: Deadlines[asyncio.Future[bool]] = Deadlines(_expire)  # the time budget, one timer
        self._conn: AbstractConnection | None = None

    async def enqueue(self, task_name: str, kwargs: dict[str, Any], kwargsrepr: str, key: str) -> bool:
        """Queue one task as a signed Celery message (the `Producer` interface): True when new."""
        return await self.push(build_task_message(task_name, kwargs, kwargsrepr, self._queue, self._signer), key)

    async def push(self, message: bytes, key: str) -> bool:
        """Push `message` unless a delivery with `key` was accepted within the dedup window.

        Returns True when pushed, False for a duplicate. Transient Redis errors are retried until
        the time budget runs out, then BrokerUnavailable.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        delay = 0.05
        while True:
            fut: asyncio.Future[bool] = loop.create_future()
            self._pending.append(_Entry(key, message, fut))
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_forever())
            self._wake.set()
            self._deadlines.watch(fut, deadline)
            try:
                return await fut
            except _Expired as exc:
                raise BrokerUnavailable("broker did not take the message in time") from exc
            except (RedisError, OSError) as exc:
                if loop.time() + delay >= deadline:
                    raise BrokerUnavailable("broker did not take the message in time") from exc
                logger.warning("enqueue failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            finally:
                self._deadlines.release(fut)

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                await self._flush(batch)

    async def _flush(self, batch: list[_Entry]) -> None:
        keys = [self._queue, ledger_key(), ledger_due_key(), *(dedup_key(e.key) for e in batch)]
        args: list[Any] = [
            self._dedup_window,
            time.time() + self._stale_after,
            *(e.message for e in batch),
            *(e.key for e in batch),
        ]
        try:
            results = await self._evalsha(keys, args)
        except BaseException as exc:
            for entry in batch:
                if not entry.fut.done():
                    entry.fut.set_exception(exc if isinstance(exc, Exception) else RedisError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for entry, fresh in zip(batch, results, strict=True):
            if not entry.fut.done():
                entry.fut.set_result(bool(fresh))

    async def _evalsha(self, keys: list[str], args: list[Any]) -> list[int]:
        """The enqueue script on the flusher's own connection, packed and read directly: one batch
        is in flight at a time, so one connection serves them all, and redis-py's per-command layers
        (pool checkout, retry wrapper, response callbacks) cost more than packing the batch."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(conn.pack_command("EVALSHA", self._script.sha, len(keys), *keys, *args))
            return cast(list[int], await conn.read_response())
        except NoScriptError:
            return cast(list[int], await self._script(keys=keys, args=args))  # Redis lost its scripts: load, run
        except BaseException:
            await conn.disconnect(nowait=True)  # a half-read reply must not answer the next batch
            raise

    async def close(self) -> None:
        self._deadlines.close()
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
