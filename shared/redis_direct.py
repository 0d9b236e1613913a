"""The one adapter over redis-py's connection internals: a script call on a connection the caller keeps.

The worker's two script calls per task (completion check, done marker) and the ingress's enqueue script
per batch skip redis-py's pool checkout, retry wrapper and response callbacks by packing EVALSHA on a
connection of their own (docs/performance.md: 75 -> 47 µs and 92 -> 45 µs of CPU per worker call).
Those methods (`ConnectionPool.make_connection`, `Connection.pack_command`, `send_packed_command`,
`read_response`, `disconnect`) are not redis-py's documented API, so they are used here only, checked by
`check()` at start-up, and redis is bounded in pyproject.toml.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from shared.errors import ConfigurationError

SUPPORTED = "redis>=6.4,<9"
_CONNECTION_METHODS = ("pack_command", "send_packed_command", "read_response", "disconnect")


def check() -> None:
    """Raise ConfigurationError when the installed redis-py lacks what this module uses."""
    missing = [
        f"{pool.__module__}.ConnectionPool.make_connection"
        for pool in (redis.ConnectionPool, redis.asyncio.ConnectionPool)
        if not callable(getattr(pool, "make_connection", None))
    ]
    missing += [
        f"{conn.__module__}.Connection.{name}"
        for conn in (redis.connection.Connection, redis.asyncio.connection.Connection)
        for name in _CONNECTION_METHODS
        if not callable(getattr(conn, name, None))
    ]
    if missing:
        raise ConfigurationError(
            f"the installed redis {redis.__version__} lacks {', '.join(missing)}; frameio-kit supports {SUPPORTED}"
        )


class _Script(Protocol):
    sha: str

    def __call__(self, keys: Any = ..., args: Any = ..., client: Any = ...) -> Any: ...


class SyncScriptCaller:
    """Calls scripts on one connection owned by the caller (one per thread: not thread-safe)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._conn: Any = None

    def call(self, script: _Script, keys: tuple[str, ...] | list[str], args: tuple[Any, ...] | list[Any]) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.make_connection()
        try:
            conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args))
            return conn.read_response()
        except NoScriptError:
            return script(keys=keys, args=args)  # Redis lost its scripts (restart, flush): load, run
        except BaseException:
            conn.disconnect()  # a half-read reply must not answer the next call
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


class AsyncScriptCaller:
    """`SyncScriptCaller` for asyncio clients: one call in flight at a time (the caller's job)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._conn: Any = None

    async def call(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args))
            return await conn.read_response()
        except NoScriptError:
            return await script(keys=keys, args=args)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise

    async def call_many(self, calls: list[tuple[_Script, list[str], list[Any]]]) -> list[Any]:
        """Several script calls in one round trip, run by Redis in this order. Each result is the
        script's answer or the error it answered (an exception instance, not raised: one failing
        script does not hide the others' answers); connection errors raise."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        packed: list[bytes] = []
        for script, keys, args in calls:
            packed += conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        results: list[Any] = []
        try:
            await conn.send_packed_command(packed)
            for _ in calls:
                try:
                    results.append(await conn.read_response())
                except redis.ResponseError as exc:  # a whole error reply was read: the connection is in step
                    results.append(exc)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        for i, (script, keys, args) in enumerate(calls):
            if isinstance(results[i], NoScriptError):  # Redis lost its scripts (restart, flush): load, run
                results[i] = await script(keys=keys, args=args)
        return results

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
