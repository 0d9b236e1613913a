"""PKCE (RFC 7636, S256): the code verifier kept server-side and the challenge sent to Adobe IMS."""

from __future__ import annotations

import hashlib
import secrets

from shared.hmac_sign import b64url


def new_verifier() -> str:
    """A fresh code verifier: 64 random bytes, url-safe base64 (86 characters, within RFC 7636's 43-128)."""
    return secrets.token_urlsafe(64)


def challenge_for(verifier: str) -> str:
    """The S256 code challenge of `verifier`: unpadded url-safe base64 of its SHA-256."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())
