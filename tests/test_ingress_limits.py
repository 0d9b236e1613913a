"""Slow and oversized requests against a real ingress process are cut off, never a 5xx or a hang."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e


def _raw_request(url: str, head: bytes, body_part: bytes, wait: float) -> tuple[bytes, float]:
    parsed = urlparse(url)
    started = time.perf_counter()
    with socket.create_connection((parsed.hostname, parsed.port), timeout=wait) as sock:
        sock.sendall(head + body_part)
        answer = sock.recv(4096)
    return answer, time.perf_counter() - started


def test_trickled_body_gets_408_within_the_body_timeout(start_ingress):
    url = start_ingress(extra_env={"FRAMEIO_KIT_BODY_TIMEOUT": "1"})
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    answer, seconds = _raw_request(url, head, b'{"type": "file.', wait=10)
    assert answer.startswith(b"HTTP/1.1 408")
    assert seconds < 5


def test_absurd_headers_are_refused_without_a_server_error(start_ingress):
    url = start_ingress()
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Frameio-Signature: v0=" + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n"
    try:
        answer, _ = _raw_request(url, head, b"{}", wait=10)
    except (ConnectionResetError, BrokenPipeError):
        return  # the server dropped the connection: also a refusal
    assert answer == b"" or answer.split(b" ")[1][:1] == b"4"
