"""The ingress's transport wrapper (ingress/server.py): a response's head and body leave in one
write, and nothing is held past the current turn of the loop or a close."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from ingress.server import HeadHoldingTransport


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _wrapped(loop: asyncio.AbstractEventLoop) -> tuple[HeadHoldingTransport, _Recorder, SimpleNamespace]:
    cycle = SimpleNamespace(response_started=False, expected_content_length=0)
    protocol = SimpleNamespace(cycle=cycle, loop=loop)
    real = _Recorder()
    return HeadHoldingTransport(real, protocol), real, cycle  # type: ignore[arg-type]


def _start(cycle: SimpleNamespace, length: int) -> None:
    cycle.response_started, cycle.expected_content_length = True, length


def test_a_response_head_goes_out_with_its_body_in_one_write() -> None:
    async def scenario() -> list[bytes]:
        transport, real, cycle = _wrapped(asyncio.get_running_loop())
        _start(cycle, 4)
        transport.write(b"HEAD\r\n\r\n")
        cycle.expected_content_length = 0
        transport.write(b"body")
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(scenario()) == [b"HEAD\r\n\r\nbody"]


def test_a_head_without_a_body_is_written_at_once() -> None:
    async def scenario() -> list[bytes]:
        transport, real, cycle = _wrapped(asyncio.get_running_loop())
        _start(cycle, 0)
        transport.write(b"202 HEAD\r\n\r\n")
        return list(real.writes)

    assert asyncio.run(scenario()) == [b"202 HEAD\r\n\r\n"]


def test_a_head_whose_body_is_late_is_sent_at_the_end_of_the_loop_turn() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        transport, real, cycle = _wrapped(asyncio.get_running_loop())
        _start(cycle, 4)
        transport.write(b"HEAD\r\n\r\n")
        before = list(real.writes)
        await asyncio.sleep(0)
        return before, real.writes

    before, after = asyncio.run(scenario())
    assert before == []
    assert after == [b"HEAD\r\n\r\n"]


def test_closing_sends_a_held_head_first() -> None:
    async def scenario() -> tuple[list[bytes], bool]:
        transport, real, cycle = _wrapped(asyncio.get_running_loop())
        _start(cycle, 4)
        transport.write(b"HEAD\r\n\r\n")
        transport.close()
        return list(real.writes), real.closed

    assert asyncio.run(scenario()) == ([b"HEAD\r\n\r\n"], True)
