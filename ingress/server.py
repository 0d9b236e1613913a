"""uvicorn's httptools protocol as the ingress serves it: the connection limits it lacks (request-head
size and deadline, idle connections closed, a cap on connections per process that evicts idle ones
first) and one write per answer (`HeadHoldingTransport`); docs/decisions.md. The uvicorn internals used
here come from ingress/uvicorn_compat.py, which checks them at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from functools import lru_cache
from typing import Any

from ingress.uvicorn_compat import Config, HttpToolsProtocol, ServerState
from shared.settings import get_settings

logger = logging.getLogger("frameio_kit.ingress")

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 32\r\nconnection: close\r\n\r\n"
    b"Request header fields too large\n"
)
_LINGER_SECONDS = 1.0
# Descriptors kept free for Redis, logs and the listening socket when the cap follows `ulimit -n`.
_RESERVED_FDS = 64


class ConnectionGuard:
    """One per worker process: the limits, and the connections waiting for a request head
    (new or idle keep-alive), oldest first, which are the ones dropped when the cap is reached."""

    def __init__(self, max_header_bytes: int, header_timeout: float, max_connections: int) -> None:
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.waiting: dict[LimitedHttpToolsProtocol, None] = {}


@lru_cache(maxsize=1)
def connection_guard() -> ConnectionGuard:
    settings = get_settings()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY and cap > soft - _RESERVED_FDS:
        # Past the descriptor limit accept() fails and new connections, health checks included,
        # wait in the backlog: evicting idle connections below it keeps the process answering.
        cap = max(soft - _RESERVED_FDS, 16)
        logger.warning("FRAMEIO_KIT_MAX_CONNECTIONS lowered to %d to stay under `ulimit -n` (%d)", cap, soft)
    return ConnectionGuard(settings.max_header_bytes, settings.header_timeout, cap)


_base = HttpToolsProtocol  # called directly in the per-request methods: cheaper than super()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `ConnectionGuard`.

    A module-level class so that uvicorn's worker processes (spawned, config pickled) import it.
    Per request it adds a counter, a comparison and two dict operations (about 0.7 us on top of
    uvicorn's 15 us); the head timer is armed per connection, and per request only when a head
    spans reads.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard = connection_guard()
        self.waiting = guard.waiting
        self.max_header_bytes = guard.max_header_bytes
        self.head_bytes = 0
        self.awaiting_head = True  # from connection or end of the last request until on_headers_complete
        self.refused = False
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self))
        guard = self.guard
        if len(self.connections) > guard.max_connections:
            if guard.waiting:
                evicted = next(iter(guard.waiting))
                guard.waiting.pop(evicted)
                evicted.transport.close()
            else:
                # Every connection has a request in flight: refuse this one rather than overcommit.
                transport.close()
                return
        guard.waiting[self] = None
        self.head_timer = self.loop.call_later(guard.header_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        self.cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.awaiting_head:
            _base.data_received(self, data)
            return
        self.head_bytes += len(data)
        if self.head_bytes > self.max_header_bytes:
            self.head_over_limit(data)
            return
        _base.data_received(self, data)
        if self.awaiting_head and self.head_bytes and self.head_timer is None:
            # A keep-alive connection has begun a request (uvicorn cancelled its idle timer): the head
            # must now arrive in time. Heads that arrive in one read never get here.
            self.head_timer = self.loop.call_later(self.guard.header_timeout, self.head_timed_out)

    def head_over_limit(self, data: bytes) -> None:
        if self.refused:
            return  # lingering after the 431: discard, buffer nothing
        # Feed the parser only what the limit allows: a head that ends within it is served, and
        # what follows it (body, next request) is fed and counted as usual.
        allowed = len(data) - (self.head_bytes - self.max_header_bytes)
        super().data_received(data[:allowed])
        if self.transport.is_closing():
            return
        if self.awaiting_head and self.head_bytes:
            self.refuse_head()
            return
        self.data_received(data[allowed:])

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.waiting.pop(self, None)
        if self.head_timer is not None:
            self.cancel_head_timer()
        _base.on_headers_complete(self)

    def on_message_complete(self) -> None:
        _base.on_message_complete(self)
        self.head_bytes = 0
        self.awaiting_head = True

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a next request already parsed: not idle
        _base.on_response_complete(self)
        if self.cycle.more_body:
            # Answered before its body arrived (413, 408): what is still coming is not worth reading,
            # and a client trickling it would hold the connection past every timer.
            self.transport.close()
        elif not pipelined:
            self.waiting[self] = None  # if closing, connection_lost (always later) removes it again

    def head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def refuse_head(self) -> None:
        """Answer 431 and half-close; keep reading (and discarding) briefly so the client sees the
        answer: closing with its unread bytes in the socket would reset the connection instead."""
        logger.warning("request head over %d bytes refused (431)", self.guard.max_header_bytes)
        self.refused = True
        self.transport.write(_TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.cancel_head_timer()
        self.head_timer = self.loop.call_later(_LINGER_SECONDS, self.head_timed_out)


class HeadHoldingTransport(asyncio.Transport):
    """The connection's transport, holding a response head back until its body is written.

    uvicorn writes a response's head and its body with separate `write` calls, and uvloop sends
    each at once: two system calls per answer that has a body. Holding the head (only when a body
    is declared to follow) puts both in one, about 7% of a Form answer's CPU. A head whose body
    does not follow within this turn of the loop is sent at the end of it.
    """

    def __init__(self, transport: asyncio.Transport, protocol: HttpToolsProtocol) -> None:
        super().__init__()
        self._inner = transport
        self._protocol = protocol
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        cycle = self._protocol.cycle
        if cycle is not None and cycle.response_started and cycle.expected_content_length > 0:
            self._held = bytes(data)
            self._protocol.loop.call_soon(self._flush)
            return
        self._inner.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            self._inner.write(data)

    def close(self) -> None:
        self._flush()
        self._inner.close()

    def abort(self) -> None:
        self._held = None
        self._inner.abort()

    def write_eof(self) -> None:
        self._flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)
