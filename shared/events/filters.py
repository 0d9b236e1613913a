"""The filters `frameio-kit events` and `dead-letters replay` take: event type (prefix or glob), ids,
status and a time window given as an ISO time or a duration ago (`2h`, `30m`, `7d`)."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_GLOB = re.compile(r"[*?\[]")


def parse_when(value: str, now: float | None = None) -> float:
    """Unix time of `value`: a duration ago (`90s`, `30m`, `2h`, `7d`, `1w`) or an ISO 8601 time (local
    time unless it names an offset or ends in Z). ValueError, naming the forms, for anything else."""
    text = value.strip()
    found = _DURATION.match(text.lower())
    if found:
        return (time.time() if now is None else now) - float(found.group(1)) * _UNIT[found.group(2)]
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (like 90s, 30m, 2h, 7d, 1w) nor an ISO time (like 2025-05-02T10:14:03)"
        ) from None
    return moment.timestamp()  # a naive time is local time, as the listings print it


@dataclass(frozen=True)
class EventFilter:
    """Which events to take: every given criterion must match; none given matches everything."""

    type: str | None = None
    account: str | None = None
    workspace: str | None = None
    resource: str | None = None
    statuses: Collection[str] = field(default_factory=frozenset)
    since: float | None = None
    until: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.type or self.account or self.workspace or self.resource or self.statuses) and (
            self.since is None and self.until is None
        )

    def type_matches(self, event_type: str) -> bool:
        """`file.*` and other globs match the whole type; a plain value is a prefix (`file.` or `file.ready`)."""
        if not self.type:
            return True
        if _GLOB.search(self.type):
            return fnmatchcase(event_type, self.type)
        return event_type.startswith(self.type)

    def matches(
        self,
        *,
        event_type: str,
        account: str,
        workspace: str,
        resource: str,
        at: float,
        status: str | None = None,
    ) -> bool:
        return (
            self.type_matches(event_type)
            and (not self.account or account == self.account)
            and (not self.workspace or workspace == self.workspace)
            and (not self.resource or resource == self.resource)
            and (not self.statuses or status in self.statuses)
            and (self.since is None or at >= self.since)
            and (self.until is None or at <= self.until)
        )
