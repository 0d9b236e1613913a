"""Frame.io request signatures: HMAC-SHA256 over `v0:{timestamp}:` + the raw body.

Verification works on the raw bytes, before any parsing, and never raises on hostile input.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from shared.hmac_sign import hmac_hex, same

TIMESTAMP_HEADER = "X-Frameio-Request-Timestamp"
SIGNATURE_HEADER = "X-Frameio-Signature"
TOLERANCE_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12
_SIGNATURE_LENGTH = len("v0=") + 64


def compute_signature(body: bytes, timestamp: str | int, secret: str) -> str:
    """The `X-Frameio-Signature` value Frame.io would send for this body and timestamp."""
    message = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac_hex(secret.encode("utf-8"), message)


def sign_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Both signature headers for `body`, as Frame.io sends them (used by `send` and tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: compute_signature(body, ts, secret)}


def parse_timestamp(value: str | None, now: float | None = None) -> int | None:
    """The header's timestamp if it is plain ASCII digits within the replay window, else None."""
    if not value or len(value) > _MAX_TIMESTAMP_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    ts = int(value)
    current = time.time() if now is None else now
    if abs(current - ts) > TOLERANCE_SECONDS:
        return None
    return ts


def signature_matches(body: bytes, timestamp: str, signature: str, secret: str) -> bool:
    """Constant-time check of `signature` against the expected one. Never raises."""
    if len(signature) != _SIGNATURE_LENGTH:
        return False
    try:
        provided = signature.encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = compute_signature(body, timestamp, secret).encode("ascii")
    return same(expected, provided)


async def verify_signature(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Verifies the HMAC-SHA256 signature of an incoming Frame.io request.

    Returns False when either header is missing or malformed, when the timestamp is more than
    300 s away from now in either direction, or when the signature does not match.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None or signature is None or parse_timestamp(timestamp) is None:
        return False
    return signature_matches(body, timestamp, signature, secret)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value if isinstance(value, str) else None
