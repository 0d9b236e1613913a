"""Signed requests, byte for byte as Frame.io sends them, to an ingress at a URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from frameio_kit.testing.payloads import encode_body
from shared.core.signature import sign_headers


def sign_request(
    payload: Mapping[str, Any] | bytes, secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a signed delivery (`X-Frameio-Request-Timestamp`, `X-Frameio-Signature`).

    `timestamp` defaults to now; pass an old one to test the replay window.
    """
    body = encode_body(payload)
    return body, {"content-type": "application/json", **sign_headers(body, secret, timestamp)}


def post_signed(
    url: str,
    payload: Mapping[str, Any] | bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST `payload` signed with `secret` to a running ingress at `url` (e.g. `http://127.0.0.1:8000/`)."""
    body, signed = sign_request(payload, secret, timestamp=timestamp)
    return httpx.post(url, content=body, headers={**signed, **(headers or {})}, timeout=timeout)
