"""Slow, oversized and idle connections against a real ingress process are cut off, never a 5xx or
a hang, and health checks keep answering while they are held (ingress/server.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from ingress.server import ConnectionGuard
from tests.helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]

StartIngress = Callable[..., str]


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return str(parsed.hostname), int(parsed.port or 80)


def _ingress_process(url: str) -> psutil.Process:
    """The `frameio-kit ingress` process listening on the URL's port (uvicorn workers are its children)."""
    port = str(_address(url)[1])
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "ingress" in cmdline and port in cmdline and "--port" in cmdline:
            return proc
    raise AssertionError(f"no ingress process for {url}")


def _rss(proc: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def _open_connections(proc: psutil.Process, port: int) -> int:
    return sum(
        1
        for p in [proc, *proc.children(recursive=True)]
        for c in p.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@contextmanager
def _connection(url: str, timeout: float = 10.0) -> Iterator[socket.socket]:
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        yield sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a reset counts as closed."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return received


def _read_response(sock: socket.socket) -> bytes:
    """One response (head and Content-Length body) from a keep-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096) or b"\r\n\r\n"
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")), 0
    )
    while len(body) < length:
        body += sock.recv(4096) or b"?" * length
    return received


def _status(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def test_trickled_body_gets_408_within_the_body_timeout(start_ingress: StartIngress) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_BODY_TIMEOUT": "1"})
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    started = time.perf_counter()
    with _connection(url) as sock:
        sock.sendall(head + b'{"type": "file.')
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.perf_counter() - started < 5


def test_one_megabyte_header_is_refused_without_growing_the_ingress(start_ingress: StartIngress) -> None:
    """A request that is otherwise valid and needs no signature, so only the header limit refuses it."""
    url = start_ingress()
    server = _ingress_process(url)
    for _ in range(20):
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    before = _rss(server)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1024 * 1024 + b"\r\n\r\n"
    answers = []
    with ExitStack() as stack:
        socks = [stack.enter_context(_connection(url)) for _ in range(8)]
        for sock in socks:
            try:
                sock.sendall(request)
            except (ConnectionResetError, BrokenPipeError):
                pass  # refused before the client finished sending: what we want
        answers = [_read_until_closed(sock) for sock in socks]
        grown_mb = (_rss(server) - before) / 1e6
    assert all(_status(a) in (431, None) for a in answers), [a[:60] for a in answers]
    assert grown_mb < 4, f"RSS grew {grown_mb:.1f} MB"
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200


def test_headers_under_the_limit_are_served(start_ingress: StartIngress) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_MAX_HEADER_BYTES": "4096"})
    assert httpx.get(url + "/healthz", headers={"X-Padding": "a" * 3500}, timeout=5).status_code == 200
    assert httpx.get(url + "/healthz", headers={"X-Padding": "a" * 5000}, timeout=5).status_code == 431


def test_pipelined_requests_are_each_held_to_the_limit_not_together(start_ingress: StartIngress) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_MAX_HEADER_BYTES": "4096"})
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 3000 + b"\r\n"
    with _connection(url) as sock:
        # 9 KB in one write, each head under 4 KB; the last asks to close, so the answers end with it.
        sock.sendall(request + b"\r\n" + request + b"\r\n" + request + b"Connection: close\r\n\r\n")
        answers = _read_until_closed(sock)
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 3, answers[:200]


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /hea", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"],
    ids=["nothing", "half a request line", "headers without the blank line"],
)
def test_incomplete_head_is_closed_within_the_header_timeout(start_ingress: StartIngress, sent: bytes) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_HEADER_TIMEOUT": "1"})
    with _connection(url) as sock:
        started = time.perf_counter()
        sock.sendall(sent)
        answer = _read_until_closed(sock)
        elapsed = time.perf_counter() - started
    assert answer == b""
    assert 0.8 < elapsed < 1.5


def test_trickled_head_is_closed_within_the_header_timeout(start_ingress: StartIngress) -> None:
    """Slowloris: every byte resets no timer; the whole head must arrive in time."""
    url = start_ingress(extra_env={"FRAMEIO_KIT_HEADER_TIMEOUT": "1"})
    with _connection(url) as sock:
        started = time.perf_counter()
        sock.settimeout(0.1)
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
            if closed:
                break
        elapsed = time.perf_counter() - started
    assert closed
    assert elapsed < 1.5


def test_keep_alive_connection_serves_requests_then_closes_when_idle(start_ingress: StartIngress) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_HEADER_TIMEOUT": "1", "FRAMEIO_KIT_KEEP_ALIVE_TIMEOUT": "1"})
    with _connection(url) as sock:
        for _ in range(3):
            # A head split over reads, with pauses shorter than the timeouts, is served.
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            time.sleep(0.2)  # pacing the client, not waiting for the server
            sock.sendall(b"Host: x\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.perf_counter()
        assert _read_until_closed(sock) == b""
        assert time.perf_counter() - started < 1.5
        # The idle keep-alive timer starts after the last response.
        assert time.perf_counter() - started > 0.8


def test_half_request_after_a_keep_alive_response_is_closed_within_the_header_timeout(
    start_ingress: StartIngress,
) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_HEADER_TIMEOUT": "1", "FRAMEIO_KIT_KEEP_ALIVE_TIMEOUT": "30"})
    with _connection(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.perf_counter()
        sock.sendall(b"GET /hea")
        assert _read_until_closed(sock) == b""
        assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize("cap", [None, 64], ids=["default cap", "cap below the attack"])
def test_health_check_answers_with_300_half_open_connections(start_ingress: StartIngress, cap: int | None) -> None:
    url = start_ingress(extra_env={"FRAMEIO_KIT_MAX_CONNECTIONS": str(cap)} if cap else {})
    server = _ingress_process(url)
    port = _address(url)[1]
    # Below the cap, eviction starts where the reserve begins (ingress/server.py).
    held = 300 if cap is None else ConnectionGuard(1024, 1.0, cap).evict_above
    with ExitStack() as stack:
        for i in range(300):
            sock = stack.enter_context(_connection(url))
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GET /heal")
            except (ConnectionResetError, BrokenPipeError):
                pass  # evicted already (cap below 300)
        wait_until(lambda: _open_connections(server, port) >= held, timeout=10, what=f"{held} connections held")
        started = time.perf_counter()
        answer = httpx.get(url + "/healthz", timeout=5)
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200
        assert elapsed < 1.0
        assert _open_connections(server, port) <= held + 1


def test_health_check_answers_while_300_connections_stream_endless_headers(start_ingress: StartIngress) -> None:
    """Before the head limit, httptools buffered each such header whole: /healthz timed out and RSS
    grew by gigabytes."""
    url = start_ingress()
    server = _ingress_process(url)
    before = _rss(server)
    chunk = b"a" * 65536
    stop = threading.Event()
    sent = [0]
    with ExitStack() as stack:
        socks = [stack.enter_context(_connection(url)) for _ in range(300)]
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            sock.setblocking(False)

        def pump() -> None:
            while not stop.is_set():
                for sock in socks:
                    with suppress(OSError):  # full buffer, or refused and closed: both expected
                        sent[0] += sock.send(chunk)

        pumping = threading.Thread(target=pump)
        pumping.start()
        try:
            wait_until(lambda: sent[0] > 300 * len(chunk), timeout=10, what="20 MB of headers sent")
            started = time.perf_counter()
            answer = httpx.get(url + "/healthz", timeout=10)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            pumping.join()
        grown_mb = (_rss(server) - before) / 1e6
    assert answer.status_code == 200
    assert elapsed < 1.0
    assert grown_mb < 20, f"RSS grew {grown_mb:.1f} MB"


def test_limits_hold_with_several_uvicorn_workers(start_ingress: StartIngress) -> None:
    url = start_ingress(
        extra_env={"FRAMEIO_KIT_HEADER_TIMEOUT": "1", "FRAMEIO_KIT_ACTION_STATE": "redis"}, args=("--workers", "2")
    )
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    assert httpx.get(url + "/healthz", headers={"X-Padding": "a" * 20_000}, timeout=5).status_code == 431
    with _connection(url) as sock:
        started = time.perf_counter()
        sock.sendall(b"GET /hea")
        assert _read_until_closed(sock) == b""
        assert time.perf_counter() - started < 1.5
