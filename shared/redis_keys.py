"""Every Redis key this package writes, built in one place under one prefix."""

from __future__ import annotations

PREFIX = "frameio-kit"


def dedup_key(idempotency_key: str) -> str:
    """Marks a webhook delivery accepted within the de-duplication window."""
    return f"{PREFIX}:dedup:{idempotency_key}"


def done_key(idempotency_key: str) -> str:
    """Marks a webhook event whose handler completed."""
    return f"{PREFIX}:done:{idempotency_key}"
