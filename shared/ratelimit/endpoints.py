"""What Frame.io limits a request by: the account in its path, the caller's token, the endpoint.

`budget_of(method, path, authorization)` names a request's budget without ever keeping the token: the
token's identity is a keyed hash of it, and the endpoint is the method and the path with every id
replaced by `{id}` ("GET /v4/accounts/{id}/files/{id}"), so neither a token nor a resource id ever
reaches Redis.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

from shared.ratelimit.defaults import DEFAULT_LIMITS

API_ROOT = "v4"
ID = "{id}"
NO_ACCOUNT = "-"
ANONYMOUS = "-"

WORDS = frozenset(seg for _, path in DEFAULT_LIMITS for seg in path.split("/") if seg and seg != ID)
"""Path words of the documented endpoints (`files`, `copy`, `field_definitions`...): never an id."""
_WORD = re.compile(r"[a-z][a-z_]*")
_IDENTITY_SALT = b"frameio-kit rate-limit identity v1\n"


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget: Frame.io's limit applies per account, per user (token) and per endpoint."""

    account: str
    identity: str
    method: str
    template: str

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def key(self) -> str:
        return f"{self.account}\n{self.identity}\n{self.endpoint}"


def budget_of(method: str, path: str, authorization: str | None) -> Budget | None:
    """The budget a request spends, or None when it is not a Frame.io API call (no `/v4/` in its
    path: Adobe IMS, a presigned upload URL), which the limiter lets through untouched."""
    parts = [p for p in path.split("/") if p]
    try:
        root = parts.index(API_ROOT)
    except ValueError:
        return None
    segments = parts[root + 1 :]
    account = NO_ACCOUNT
    if len(segments) >= 2 and segments[0] == "accounts":
        account = unquote(segments[1])
    return Budget(account, identity_of(authorization), method.upper(), template_of(segments))


def template_of(segments: list[str]) -> str:
    """`/v4/...` with ids replaced by `{id}`. A segment is a path word when it is one of the documented
    endpoints' words, or a lowercase word right after an id (a newer sub-resource); anything else
    (UUIDs, `adobe:` ids, numbers, words where an id goes) is an id."""
    out = [""]
    previous_was_id = True  # the root `v4`, like an id, is followed by a collection word
    for seg in segments:
        is_word = seg in WORDS or (previous_was_id and _WORD.fullmatch(seg) is not None)
        out.append(seg if is_word else ID)
        previous_was_id = not is_word
    return f"/{API_ROOT}" + "/".join(out) if len(out) > 1 else f"/{API_ROOT}"


def identity_of(authorization: str | None) -> str:
    """A short keyed hash of the bearer token (never the token): one user's budget across processes."""
    if not authorization:
        return ANONYMOUS
    token = authorization.partition(" ")[2].strip() or authorization.strip()
    return hashlib.sha256(_IDENTITY_SALT + token.encode("utf-8", "replace")).hexdigest()[:20]
