"""Scrubbing exception text before it leaves the worker (logs, Celery events, the attempt history)
or reaches the ingress log (a failed action handler).

A handler's exception may quote what the user typed or a token it used: every private value the job
carries is replaced, and so is anything shaped like a credential.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable

REDACTED = "[redacted]"
_MIN_CHARS = 4

_CREDENTIALS = re.compile(
    r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|(?:access_token|refresh_token|id_token|api[_-]?key|secret|password|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?[^\s\"',;}]+"
)


class Redactor:
    """Replaces the given private values (longest first) and credential-shaped text."""

    def __init__(self, private: Iterable[str] = ()) -> None:
        self._values = sorted({v for v in private if len(v) >= _MIN_CHARS}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        return _CREDENTIALS.sub(REDACTED, text)


def string_leaves(obj: object) -> Iterable[str]:
    """Every string value (not key) inside nested dicts and lists."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from string_leaves(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from string_leaves(value)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield str(obj)


def scrubbed_traceback(exc: BaseException, private: Iterable[str] = ()) -> str:
    """`exc` and its traceback (chained exceptions included) as text, scrubbed by a `Redactor`: for a
    process that logs a failure outside the worker's job runner (the ingress, for an action handler)."""
    return Redactor(private)("".join(traceback.format_exception(exc)).rstrip("\n"))
