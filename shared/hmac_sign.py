"""HMAC-SHA256 signing and constant-time comparison: the one place every signature is made and checked.

Frame.io request signatures (hex), job signatures (hex), login links and install-session cookies
(unpadded url-safe base64) and the keys derived for them all go through here, so the hash and the
comparison cannot drift apart between them.
"""

from __future__ import annotations

import base64
import hmac
from typing import AnyStr


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The raw MAC (OpenSSL's one-shot `hmac.digest`: no HMAC object per call)."""
    return hmac.digest(key, message, "sha256")


def hmac_hex(key: bytes, message: bytes) -> str:
    """The MAC as lower-case hex (Frame.io's `v0=` signatures, job signatures)."""
    return hmac_sha256(key, message).hex()


def hmac_b64url(key: bytes, message: bytes) -> str:
    """The MAC as unpadded url-safe base64 (login links, cookies: short and URL-safe)."""
    return b64url(hmac_sha256(key, message))


def b64url(raw: bytes) -> str:
    """Unpadded url-safe base64, as signed tokens and PKCE challenges carry it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def same(expected: AnyStr, given: AnyStr) -> bool:
    """Constant-time equality (`hmac.compare_digest`): both str (ASCII only, else TypeError) or both bytes."""
    return hmac.compare_digest(expected, given)
