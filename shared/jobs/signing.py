"""Signed job envelopes: the ingress signs every job it queues, workers run only jobs they can verify.

The signature is an HMAC-SHA256, keyed with FRAMEIO_KIT_JOB_SIGNING_KEYS (first signs, all verify),
over the task name, the job's issued-at time and its canonical content: its kwargs as sorted-key
compact JSON, without the two envelope fields. Both travel inside the kwargs, so Celery's retries
(which re-send the kwargs), the ledger sweep (which re-sends the stored message) and dead-letter
replays (which re-send the kwargs the worker received) keep them unchanged. A job older than
FRAMEIO_KIT_JOB_MAX_AGE is refused: a copied message cannot be replayed forever. The keys live in
the environment of the ingress, the workers and the CLI, never in Redis.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Literal

import orjson

from shared.hmac_sign import hmac_hex, same
from shared.settings import DEFAULT_JOB_MAX_AGE, Settings

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "job_signature"
ISSUED_AT_FIELD = "job_issued_at"
ENVELOPE_FIELDS = frozenset({SIGNATURE_FIELD, ISSUED_AT_FIELD})
ENV_VAR = "FRAMEIO_KIT_JOB_SIGNING_KEYS"
MIN_KEY_CHARS = 32

Verdict = Literal["valid", "missing", "invalid", "expired"]

_dev_key: str | None = None


def _canonical(kwargs: dict[str, Any]) -> bytes:
    return orjson.dumps(kwargs, option=orjson.OPT_SORT_KEYS)


def signing_keys(settings: Settings) -> list[bytes]:
    """The configured keys, first one signing. Outside dev mode none is a start-up error; dev mode
    without one (a process started by hand, not by `frameio-kit dev`) gets a throwaway key."""
    raw = settings.job_signing_keys.get_secret_value() if settings.job_signing_keys is not None else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    short = [i + 1 for i, k in enumerate(keys) if len(k) < MIN_KEY_CHARS]
    if short:
        raise ValueError(f"{ENV_VAR}: key {short[0]} is shorter than {MIN_KEY_CHARS} characters")
    if keys:
        return [k.encode("utf-8") for k in keys]
    if not settings.dev:
        raise ValueError(
            f"no job-signing key: set {ENV_VAR} (comma separated, at least {MIN_KEY_CHARS} characters each, the "
            "first signs) to the same value for the ingress, the workers and the dead-letters CLI"
        )
    global _dev_key
    if _dev_key is None:
        _dev_key = secrets.token_urlsafe(32)
        logger.warning(
            "DEV MODE: generated a throwaway job-signing key; jobs queued by other processes will be refused "
            "(set %s, or start everything with `frameio-kit dev`)",
            ENV_VAR,
        )
    return [_dev_key.encode("ascii")]


def issued_at(kwargs: dict[str, Any]) -> int | None:
    """The envelope's issued-at time (Unix seconds), or None when absent or not an integer."""
    value = kwargs.get(ISSUED_AT_FIELD)
    # bool is an int subclass: `true` is not a time.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class JobSigner:
    """Signs and verifies job kwargs. Built once per process from the settings."""

    def __init__(self, keys: list[bytes], max_age: int = DEFAULT_JOB_MAX_AGE) -> None:
        if not keys:
            raise ValueError("JobSigner needs at least one key")
        if max_age < 1:
            raise ValueError("JobSigner needs a positive max_age")
        self._keys = keys
        self.max_age = max_age

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSigner:
        return cls(signing_keys(settings), settings.job_max_age_seconds)

    def _mac(self, key: bytes, task_name: str, issued: int, canonical: bytes) -> str:
        # The issued-at sits between task name and content: digits and a newline never begin the JSON object.
        return hmac_hex(key, b"%s\n%d\n%s" % (task_name.encode("utf-8"), issued, canonical))

    def signed_json(self, task_name: str, kwargs: dict[str, Any], issued: int | None = None) -> bytes:
        """The kwargs as JSON with the envelope fields added: one serialisation, reused as the message's
        kwargs (the ingress's hot path: the two fields are spliced onto the canonical bytes)."""
        canonical = _canonical(kwargs)
        issued = int(time.time()) if issued is None else issued
        mac = self._mac(self._keys[0], task_name, issued, canonical)
        tail = b'"%s":%d,"%s":"%s"}' % (ISSUED_AT_FIELD.encode(), issued, SIGNATURE_FIELD.encode(), mac.encode())
        return canonical[:-1] + (b"," if len(canonical) > 2 else b"") + tail

    def sign(self, task_name: str, kwargs: dict[str, Any], issued: int | None = None) -> dict[str, Any]:
        """A copy of `kwargs` with the envelope fields (for publishing through Celery's producer)."""
        bare = unsigned(kwargs)
        issued = int(time.time()) if issued is None else issued
        mac = self._mac(self._keys[0], task_name, issued, _canonical(bare))
        return {**bare, ISSUED_AT_FIELD: issued, SIGNATURE_FIELD: mac}

    def verify(self, task_name: str, kwargs: dict[str, Any], now: float | None = None) -> Verdict:
        """Whether the kwargs a task received carry a valid signature by any configured key, issued
        within `max_age` of now (either side: a clock far ahead is no more trusted than one far behind).
        Only a job whose signature verifies can be "expired"."""
        signature = kwargs.get(SIGNATURE_FIELD)
        if not isinstance(signature, str) or not signature:
            return "missing"
        issued = issued_at(kwargs)
        if issued is None:
            # Signed before jobs carried an issued-at, or tampered with: either way it cannot expire.
            return "missing" if ISSUED_AT_FIELD not in kwargs else "invalid"
        try:
            canonical = _canonical(unsigned(kwargs))
        except (TypeError, orjson.JSONEncodeError):
            return "invalid"
        given = signature.encode("utf-8", "replace")
        if not any(same(self._mac(key, task_name, issued, canonical).encode("ascii"), given) for key in self._keys):
            return "invalid"
        age = (time.time() if now is None else now) - issued
        return "expired" if abs(age) > self.max_age else "valid"


def unsigned(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs without the envelope fields: what the job model is built from."""
    return {k: v for k, v in kwargs.items() if k not in ENVELOPE_FIELDS}
