"""Issue 21, points 3, 4 and 8, as attacks on a real ingress process over loopback sockets: pipelined
floods that never read their answers, request bodies trickled at the connection cap, and a pipelined
POST whose body follows the first answer (ingress/server.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress

import httpx
import pytest

from tests.helpers import WEBHOOK_SECRET, sign_request, wait_until, webhook_payload
from tests.test_ingress_limits import _address, _connection, _ingress_process, _open_connections, _read_response, _rss

pytestmark = pytest.mark.e2e

StartIngress = Callable[..., str]

_MINIMAL = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _send_for(socks: list[socket.socket], payload: bytes, seconds: float, sample: Callable[[], None]) -> list[int]:
    """Write `payload` on every socket, never reading, for at most `seconds`; `sample` runs between
    rounds. Returns the bytes each socket got out (the kernel stops taking them when the server stops
    reading, which is the point)."""
    sent = [0] * len(socks)
    for sock in socks:
        sock.setblocking(False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(n < len(payload) for n in sent):
        for i, sock in enumerate(socks):
            if sent[i] < len(payload):
                with suppress(BlockingIOError, ConnectionResetError, BrokenPipeError):
                    sent[i] += sock.send(payload[sent[i] : sent[i] + 65536])
        sample()
        time.sleep(0.01)  # pacing the writers, not waiting for the server
    return sent


def test_pipelined_flood_that_never_reads_its_answers_leaves_the_ingress_small_and_answering(
    start_ingress: StartIngress,
) -> None:
    """Before: 20 connections x 256 KB of minimal requests grew the ingress by ~400 MB (uvicorn parsed
    and queued every request it read)."""
    url = start_ingress()
    server = _ingress_process(url)
    for _ in range(20):
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    before = _rss(server)
    peak = [before]

    def sample() -> None:
        peak[0] = max(peak[0], _rss(server))

    flood = _MINIMAL * (256 * 1024 // len(_MINIMAL))
    with ExitStack() as stack:
        socks = [stack.enter_context(_connection(url)) for _ in range(20)]
        sent = _send_for(socks, flood, seconds=4, sample=sample)
        deadline = time.monotonic() + 2  # what was read keeps being parsed and answered for a while
        while time.monotonic() < deadline:
            sample()
            time.sleep(0.1)  # sampling pace
        started = time.perf_counter()
        answer = httpx.get(url + "/healthz", timeout=5)
        elapsed = time.perf_counter() - started
    grown_mb = (peak[0] - before) / 1e6
    assert sum(sent) > 20 * 64 * 1024, sent  # the attack happened: at least 64 KB per connection got out
    assert grown_mb < 40, f"RSS grew {grown_mb:.1f} MB"
    assert answer.status_code == 200
    assert elapsed < 2.0


def test_connection_that_leaves_its_answers_unread_is_closed_after_the_write_timeout(
    start_ingress: StartIngress,
) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_WRITE_TIMEOUT": "1"})
    server = _ingress_process(url)
    port = _address(url)[1]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect(_address(url))
        # /metrics answers are ~6 KB: the kernel's buffers fill after a few hundred, then the ingress's.
        _send_for([sock], b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000, seconds=1, sample=lambda: None)
        # Answers pile up in the ingress (the client reads none); it gives up on them and closes.
        wait_until(lambda: _open_connections(server, port) == 0, timeout=10, what="unread connection closed")
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200


def test_health_checks_answer_while_30_connections_trickle_bodies_at_the_cap(start_ingress: StartIngress) -> None:
    """Before: with FRAMEIO_KIT_MAX_CONNECTIONS=30, connections in the body phase could not be evicted
    and every new connection was refused (0 of 53 health checks answered)."""
    url = start_ingress(extra_env={"FRAMEIO_KIT_MAX_CONNECTIONS": "30", "FRAMEIO_KIT_BODY_TIMEOUT": "60"})
    server = _ingress_process(url)
    port = _address(url)[1]
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"

    def trickler() -> socket.socket:
        sock = socket.create_connection(_address(url), timeout=5)
        with suppress(OSError):
            sock.sendall(head + b'{"')
        return sock

    with ExitStack() as stack:
        socks = [trickler() for _ in range(30)]
        for sock in socks:
            stack.callback(sock.close)
        wait_until(lambda: _open_connections(server, port) >= 26, timeout=10, what="the trickling connections held")
        answered = 0
        for _ in range(10):
            # The attacker keeps trickling, and replaces each connection the ingress closes.
            for i, sock in enumerate(socks):
                try:
                    sock.sendall(b"aa")
                except OSError:
                    sock.close()
                    socks[i] = trickler()
                    stack.callback(socks[i].close)
            with suppress(httpx.HTTPError):
                answered += httpx.get(url + "/healthz", timeout=2).status_code == 200
        metrics = httpx.get(url + "/metrics", timeout=5).text
    assert answered == 10
    assert 'frameio_kit_ingress_connections_dropped_total{reason="evicted"}' in metrics


def test_pipelined_post_whose_body_follows_the_first_answer_is_answered(start_ingress: StartIngress) -> None:
    """Before: answering the GET read the POST's cycle (body still to come) as its own and closed."""
    url = start_ingress()
    body, headers = sign_request(webhook_payload("pipelined-post"), WEBHOOK_SECRET)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
    head += b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items()) + b"\r\n"
    with _connection(url) as sock:
        sock.sendall(_MINIMAL + head)
        first = _read_response(sock)
        sock.sendall(body)
        second = _read_response(sock)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 202 "), second[:80]
