"""The ingress's transport wrapper (ingress/server.py): a response's head and body leave in one
write, and nothing is held past the current turn of the loop or a close; pipelined requests are parsed
a few at a time, reading held in between.

Driven through the real protocol (`LimitedHttpToolsProtocol` over uvicorn's own request cycle, fed raw
HTTP bytes), so a uvicorn that stopped setting what the wrapper reads would fail here, not only in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ingress.server import MAX_PIPELINED, PARSE_SLICE, HeadHoldingTransport, LimitedHttpToolsProtocol
from ingress.uvicorn_compat import Config, ServerState

_REQUEST = b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n"

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class _Recorder(asyncio.Transport):
    """The socket's side of the connection: records each write the protocol makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


def _answer(status: int, body: bytes, *, before_body: Callable[[], Awaitable[None]] | None = None) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        length = str(len(body)).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", length)]})
        if before_body is not None:
            await before_body()
        await send({"type": "http.response.body", "body": body})

    return app


async def _serve(app: App) -> tuple[LimitedHttpToolsProtocol, _Recorder]:
    config = Config(app=app, lifespan="off", log_config=None, access_log=False, server_header=False, date_header=False)
    protocol = LimitedHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    real = _Recorder()
    protocol.connection_made(real)
    protocol.data_received(_REQUEST)
    return protocol, real


async def _until(condition: Callable[[], bool]) -> None:
    """Poll across turns of the loop (the protocol's own tasks and callbacks run in between)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met within 1000 turns of the loop")


def test_the_protocol_writes_through_the_head_holding_transport() -> None:
    async def scenario() -> Any:
        protocol, _ = await _serve(_answer(200, b"body"))
        transport = protocol.transport
        protocol.connection_lost(None)
        return transport

    assert isinstance(asyncio.run(scenario()), HeadHoldingTransport)


def test_a_response_head_goes_out_with_its_body_in_one_write() -> None:
    async def scenario() -> list[bytes]:
        protocol, real = await _serve(_answer(200, b"body"))
        await _until(lambda: bool(real.writes))
        protocol.connection_lost(None)
        return real.writes

    writes = asyncio.run(scenario())
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\nbody")


def test_a_head_without_a_body_is_written_at_once() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        recorders: list[_Recorder] = []
        before_the_body: list[bytes] = []

        async def look() -> None:  # runs right after the head's send, in the same turn of the loop
            before_the_body.extend(recorders[0].writes)

        protocol, real = await _serve(_answer(202, b"", before_body=look))
        recorders.append(real)
        await _until(lambda: bool(real.writes) and bool(before_the_body))
        protocol.connection_lost(None)
        return before_the_body, real.writes

    before_the_body, writes = asyncio.run(scenario())
    assert before_the_body == writes[:1]
    assert writes[0].startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert writes[0].endswith(b"\r\n\r\n")
    assert not any(writes[1:])  # uvicorn writes the empty body as b"", which sends nothing


def test_a_head_whose_body_is_late_is_sent_at_the_end_of_the_loop_turn() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        body_may_go = asyncio.Event()

        async def before_body() -> None:
            await body_may_go.wait()

        protocol, real = await _serve(_answer(200, b"late", before_body=before_body))
        await _until(lambda: bool(real.writes))
        seen = list(real.writes)
        body_may_go.set()
        await _until(lambda: len(real.writes) == 2)
        protocol.connection_lost(None)
        return seen, real.writes

    before, after = asyncio.run(scenario())
    assert len(before) == 1
    assert before[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert before[0].endswith(b"\r\n\r\n")
    assert after[1] == b"late"


def test_closing_sends_a_held_head_first() -> None:
    async def scenario() -> tuple[list[bytes], bool]:
        closed = asyncio.Event()
        protocol: list[LimitedHttpToolsProtocol] = []

        async def close_instead_of_the_body() -> None:
            protocol[0].transport.close()
            closed.set()
            await asyncio.Event().wait()  # the body never comes

        served, real = await _serve(_answer(200, b"never", before_body=close_instead_of_the_body))
        protocol.append(served)
        await _until(closed.is_set)
        served.connection_lost(None)
        return list(real.writes), real.closed

    writes, closed = asyncio.run(scenario())
    assert closed
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_parsed_a_few_at_a_time_and_all_answered_in_order() -> None:
    """2,000 minimal requests in one read: uvicorn alone queued all 2,000 at once."""
    requests = b"".join(b"GET /%d HTTP/1.1\r\nhost: x\r\n\r\n" % i for i in range(2000))
    bound = MAX_PIPELINED + PARSE_SLICE // len(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\n") + 1

    async def echo_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def scenario() -> tuple[bytes, int, bool, bool]:
        config = Config(app=echo_path, lifespan="off", log_config=None, access_log=False, date_header=False)
        protocol = LimitedHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        real = _Recorder()
        protocol.connection_made(real)
        protocol.data_received(requests)
        peak, held_at_first = len(protocol.pipeline), not real.reading
        for _ in range(200_000):
            if b"".join(real.writes).endswith(b"/1999") or real.closed:
                break
            peak = max(peak, len(protocol.pipeline))
            await asyncio.sleep(0)
        reading_again = real.reading
        protocol.connection_lost(None)
        return b"".join(real.writes), peak, held_at_first, reading_again

    written, peak, held_at_first, reading_again = asyncio.run(scenario())
    bodies = [answer.partition(b"\r\n\r\n")[2] for answer in written.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert bodies == [b"/%d" % i for i in range(2000)]
    assert peak <= bound
    assert held_at_first
    assert reading_again
