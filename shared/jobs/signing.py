"""Signed job envelopes: the ingress signs every job it queues, workers run only jobs they can verify.

The signature is an HMAC-SHA256, keyed with FRAMEIO_KIT_JOB_SIGNING_KEYS (first signs, all verify),
over the task name and the job's canonical content: its kwargs as sorted-key compact JSON, without
the signature field. It travels inside the kwargs, so Celery's retries (which re-send the kwargs)
and the ledger sweep (which re-sends the stored message) keep it. The keys live in the environment
of the ingress, the workers and the CLI, never in Redis.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Literal

import orjson

from shared.hmac_sign import hmac_hex, same
from shared.settings import Settings

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "job_signature"
ENV_VAR = "FRAMEIO_KIT_JOB_SIGNING_KEYS"
MIN_KEY_CHARS = 32

Verdict = Literal["valid", "missing", "invalid"]

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


class JobSigner:
    """Signs and verifies job kwargs. Built once per process from the settings."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("JobSigner needs at least one key")
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSigner:
        return cls(signing_keys(settings))

    def _mac(self, key: bytes, task_name: str, canonical: bytes) -> str:
        return hmac_hex(key, task_name.encode("utf-8") + b"\n" + canonical)

    def signed_json(self, task_name: str, kwargs: dict[str, Any]) -> bytes:
        """The kwargs as JSON with the signature added: one serialisation, reused as the message's kwargs."""
        canonical = _canonical(kwargs)
        tail = f'"{SIGNATURE_FIELD}":"{self._mac(self._keys[0], task_name, canonical)}"}}'.encode("ascii")
        return canonical[:-1] + (b"," if len(canonical) > 2 else b"") + tail

    def sign(self, task_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A copy of `kwargs` with the signature field (for publishing through Celery's producer)."""
        unsigned = {k: v for k, v in kwargs.items() if k != SIGNATURE_FIELD}
        return {**unsigned, SIGNATURE_FIELD: self._mac(self._keys[0], task_name, _canonical(unsigned))}

    def verify(self, task_name: str, kwargs: dict[str, Any]) -> Verdict:
        """Whether the kwargs a task received carry a valid signature by any configured key."""
        signature = kwargs.get(SIGNATURE_FIELD)
        if not isinstance(signature, str) or not signature:
            return "missing"
        try:
            canonical = _canonical({k: v for k, v in kwargs.items() if k != SIGNATURE_FIELD})
        except (TypeError, orjson.JSONEncodeError):
            return "invalid"
        given = signature.encode("utf-8", "replace")
        for key in self._keys:
            if same(self._mac(key, task_name, canonical).encode("ascii"), given):
                return "valid"
        return "invalid"


def unsigned(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs without the signature field: what the job model is built from."""
    return {k: v for k, v in kwargs.items() if k != SIGNATURE_FIELD}
