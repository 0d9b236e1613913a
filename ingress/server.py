"""uvicorn's httptools protocol as the ingress serves it: the connection limits it lacks (request-head
size and deadline, idle connections closed, a cap on connections per process that evicts connections
without a complete request first, a bound on pipelined requests, answers that must be read) and one
write per answer (`HeadHoldingTransport`); docs/decisions.md. The uvicorn internals used here come
from ingress/uvicorn_compat.py, which checks them at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from functools import lru_cache
from typing import Any

from prometheus_client import Counter

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
# Pipelined requests parsed ahead of the one being answered. uvicorn queues every request it parses,
# about 1.5 KB each: 256 KB of minimal requests was 20 MB. Past this many the parser is fed nothing more
# (and the socket not read) until answers complete.
MAX_PIPELINED = 8
# A read longer than this is fed to the parser in slices of it, so that the bound above is checked
# between slices: one slice holds at most ~230 minimal requests. Requests with their body usually fit
# in one, and cost no extra call.
PARSE_SLICE = 4096
# The cap evicts before it is reached: this share of it (at least 4) stays free for new connections.
_RESERVE_SHARE, _RESERVE_MIN = 20, 4
_DROP_LOG_INTERVAL = 60.0

CONNECTIONS_DROPPED = Counter(
    "frameio_kit_ingress_connections_dropped",
    "Connections the ingress closed to protect itself: evicted near the connection cap, refused at it, "
    "or closed for leaving their answers unread.",
    ["reason"],
)


class ConnectionGuard:
    """One per worker process: the limits, and the connections without a complete request (new, idle
    keep-alive, or still sending a body), oldest first: the ones evicted near the cap."""

    def __init__(
        self, max_header_bytes: int, header_timeout: float, max_connections: int, write_timeout: float = 10.0
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.evict_above = max_connections - max(max_connections // _RESERVE_SHARE, _RESERVE_MIN)
        self.write_timeout = write_timeout
        self.waiting: dict[LimitedHttpToolsProtocol, None] = {}
        self.dropped: dict[str, int] = {}
        self.next_report = 0.0

    def admit(self, connection: LimitedHttpToolsProtocol, open_connections: int) -> bool:
        """Make room for a new connection; False if it must be refused. Past `evict_above` the oldest
        connection without a complete request is closed, so health checks and Frame.io get in while
        half-open, idle or trickling connections are held; only past the cap itself, with every
        connection's request complete and in flight, is the new one refused."""
        if open_connections > self.evict_above:
            if self.waiting:
                evicted = next(iter(self.waiting))
                self.waiting.pop(evicted)
                if evicted.transport.get_write_buffer_size():
                    evicted.transport.abort()  # close() would wait for a reader that may never come
                else:
                    evicted.transport.close()
                self.record_drop("evicted")
            elif open_connections > self.max_connections:
                self.record_drop("refused")
                return False
        self.waiting[connection] = None
        return True

    def record_drop(self, reason: str) -> None:
        """Count it, and log at most one line a minute: under attack, a line per connection would be
        a second flood."""
        CONNECTIONS_DROPPED.labels(reason).inc()
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        now = time.monotonic()
        if now >= self.next_report:
            self.next_report = now + _DROP_LOG_INTERVAL
            counts = ", ".join(f"{count} {name}" for name, count in sorted(self.dropped.items()))
            self.dropped.clear()
            logger.warning(
                "connections dropped to protect the ingress (cap %d): %s since the last such line",
                self.max_connections,
                counts,
            )


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
    return ConnectionGuard(settings.max_header_bytes, settings.header_timeout, cap, settings.write_timeout)


_base = HttpToolsProtocol  # called directly in the per-request methods: cheaper than super()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `ConnectionGuard`.

    A module-level class so that uvicorn's worker processes (spawned, config pickled) import it.
    Per request it adds a counter, two comparisons and two dict operations (about 0.7 us on top of
    uvicorn's 15 us); the head timer is armed per connection, and per request only when a head
    spans reads; the write timer only while the client leaves its answers unread.
    """

    transport: HeadHoldingTransport

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
        self.write_timer: asyncio.TimerHandle | None = None
        # Received but not yet parsed: held while MAX_PIPELINED requests wait for their answers.
        self.unparsed: memoryview | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self))
        if not self.guard.admit(self, len(self.connections)):
            transport.close()
            return
        self.head_timer = self.loop.call_later(self.guard.header_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        self.cancel_head_timer()
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None
        self.unparsed = None
        super().connection_lost(exc)

    def data_received(self, data: bytes | memoryview) -> None:
        if self.refused:
            return  # lingering after a 431: discard at once, however much arrives
        if len(data) > PARSE_SLICE or self.unparsed is not None:
            self.feed_in_slices(data)
            return
        if not self.awaiting_head:
            _base.data_received(self, data)  # type: ignore[arg-type]
            return
        self.head_bytes += len(data)
        if self.head_bytes > self.max_header_bytes:
            self.head_over_limit(data)
            return
        _base.data_received(self, data)  # type: ignore[arg-type]
        if self.awaiting_head and self.head_bytes and self.head_timer is None:
            # A keep-alive connection has begun a request (uvicorn cancelled its idle timer): the head
            # must now arrive in time. Heads that arrive in one read never get here.
            self.head_timer = self.loop.call_later(self.guard.header_timeout, self.head_timed_out)

    def feed_in_slices(self, data: bytes | memoryview) -> None:
        """Feed the parser a slice at a time while fewer than MAX_PIPELINED requests wait; keep the rest,
        unread bytes stay in the socket (reading is held) until answers complete (`parse_held`)."""
        if self.unparsed is not None:  # arrived while holding (reading is paused, so rarely): keep order
            data = memoryview(bytes(self.unparsed) + bytes(data))
            self.unparsed = None
        view = memoryview(data)
        for start in range(0, len(view), PARSE_SLICE):
            if len(self.pipeline) >= MAX_PIPELINED:
                self.unparsed = view[start:]
                self.transport.hold_reading()
                return
            self.data_received(view[start : start + PARSE_SLICE])
            if self.transport.is_closing():
                return

    def parse_held(self) -> None:
        """Answers have completed: parse what was held back, then read the socket again if room is left."""
        data, self.unparsed = self.unparsed, None
        if self.transport.is_closing():
            return
        if data is not None:
            self.feed_in_slices(data)
        if self.unparsed is None and len(self.pipeline) < MAX_PIPELINED:
            self.transport.release_reading()

    def may_read(self) -> bool:
        return self.unparsed is None and len(self.pipeline) < MAX_PIPELINED

    def head_over_limit(self, data: bytes | memoryview) -> None:
        if self.refused:
            return  # lingering after the 431: discard, buffer nothing
        # Feed the parser only what the limit allows: a head that ends within it is served, and
        # what follows it (body, next request) is fed and counted as usual.
        allowed = len(data) - (self.head_bytes - self.max_header_bytes)
        _base.data_received(self, data[:allowed])  # type: ignore[arg-type]
        if self.transport.is_closing():
            return
        if self.awaiting_head and self.head_bytes:
            self.refuse_head()
            return
        self.data_received(data[allowed:])

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        if self.head_timer is not None:
            self.cancel_head_timer()
        _base.on_headers_complete(self)

    def on_message_complete(self) -> None:
        # Complete and about to be answered: no longer evictable (a body still arriving was).
        self.waiting.pop(self, None)
        _base.on_message_complete(self)
        self.head_bytes = 0
        self.awaiting_head = True

    def on_response_complete(self) -> None:
        # uvicorn calls this from the send of the cycle just answered, which is `self.cycle` unless a
        # later request's head was parsed meanwhile (pipelined): read that one's state, not the newest's.
        cycle = self.cycle
        pipelined = bool(self.pipeline)
        _base.on_response_complete(self)
        if cycle.response_complete and cycle.more_body:
            # Answered before its body arrived (413, 408): what is still coming is not worth reading,
            # and a client trickling it would hold the connection past every timer.
            self.transport.close()
            return
        if not pipelined or cycle.more_body:
            # Idle, or the next request is still sending its body: evictable. If closing,
            # connection_lost (always later) removes it again.
            self.waiting[self] = None
        if self.transport.reading_held and len(self.pipeline) < MAX_PIPELINED:
            if self.unparsed is None:
                self.transport.release_reading()
            else:  # outside the send that completed: parsing starts tasks and may answer 400 and close
                self.loop.call_soon(self.parse_held)

    def pause_writing(self) -> None:
        # The client is not reading its answers: more than the transport's high-water mark waits to
        # be sent. It gets FRAMEIO_KIT_WRITE_TIMEOUT to start again.
        _base.pause_writing(self)
        if self.write_timer is None:
            self.write_timer = self.loop.call_later(self.guard.write_timeout, self.write_timed_out)

    def resume_writing(self) -> None:
        _base.resume_writing(self)
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None

    def write_timed_out(self) -> None:
        self.write_timer = None
        if not self.transport.is_closing():
            self.guard.record_drop("answers_unread")
        self.transport.abort()  # close() would wait, for ever, for the unread answers to be sent

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
    """The connection's transport, holding a response head back until its body is written, and
    holding reading back while the protocol has enough pipelined requests.

    uvicorn writes a response's head and its body with separate `write` calls, and uvloop sends
    each at once: two system calls per answer that has a body. Holding the head (only when a body
    is declared to follow) puts both in one, about 7% of a Form answer's CPU. A head whose body
    does not follow within this turn of the loop is sent at the end of it.

    uvicorn's flow control pauses reading when it queues a pipelined request and resumes it when an
    answer completes or a handler reads its body, however many requests are queued: here a resume
    while the protocol may not read (`LimitedHttpToolsProtocol.may_read`) leaves reading held until
    the protocol releases it. Its pauses for a large body are kept, too: a release does not undo them.
    """

    def __init__(self, transport: asyncio.Transport, protocol: LimitedHttpToolsProtocol) -> None:
        super().__init__()
        self._inner = transport
        self._protocol = protocol
        self._held: bytes | None = None
        self._reading_paused = False  # by uvicorn's flow control
        self.reading_held = False  # by the pipeline limit

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
        self._reading_paused = True
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._reading_paused = False
        if self.reading_held or not self._protocol.may_read():
            self.reading_held = True
        else:
            self._inner.resume_reading()

    def hold_reading(self) -> None:
        self.reading_held = True
        self._inner.pause_reading()

    def release_reading(self) -> None:
        self.reading_held = False
        if not self._reading_paused and not self._inner.is_closing():
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
