"""Where a job goes (docs/tenants.md): its handler's queue (FRAMEIO_KIT_QUEUE unless `queue=`), and with
FRAMEIO_KIT_FAIRNESS=account one of that queue's `SHARDS` shard queues, picked by the event's account.

Workers consume a queue and all its shards; kombu's Redis transport takes one message at a time from
the first non-empty queue of its cycle and then moves that queue to the end, so one account's backlog
in its shard does not hold up the other shards. Also what `ordered_by=` makes of an event: the hashed
key the per-key sequence (shared/jobs/ordering.py) is kept under.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from shared.errors import ConfigurationError
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.routing")

SHARDS = 16
"""Shard queues per queue. Fixed, not a setting: every ingress, worker and CLI must agree on it, or
messages would sit in shards nobody consumes."""

_SHARD_SUFFIX = re.compile(r"\.f\d\d\Z")


def shard_names(queue: str) -> tuple[str, ...]:
    """`queue`'s shard queues: `<queue>.f00` ... `<queue>.f15`."""
    return tuple(f"{queue}.f{i:02d}" for i in range(SHARDS))


def physical_queues(queue: str) -> tuple[str, ...]:
    """Every broker queue (Redis list) that holds `queue`'s messages: itself (fairness off, replays from
    older versions, stock Celery producers) and its shards."""
    return (queue, *shard_names(queue))


def shard_of(account_id: str) -> int:
    """The account's shard: CRC-32 of its id, stable across processes and versions (not `hash()`)."""
    return zlib.crc32(account_id.encode("utf-8")) % SHARDS


def base_queue(physical: str) -> str:
    """The queue a broker queue belongs to: `frameio-kit.f03` -> `frameio-kit`."""
    return _SHARD_SUFFIX.sub("", physical)


def app_queues(default: str, handler_queues: Iterable[str | None]) -> list[str]:
    """The queues an app uses: the default queue first, then each handler's own queue once."""
    extra = sorted({q for q in handler_queues if q and q != default})
    return [default, *extra]


def parse_queue_list(value: str) -> list[str]:
    """`--queues slow,fast`: names as `on_webhook(queue=...)` takes them; ValueError otherwise."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise ValueError("--queues needs at least one queue name")
    bad = [n for n in names if not _QUEUE_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"--queues: {bad[0]!r} is not a queue name (letters, digits, '_', '.', '-')")
    shards = [n for n in names if _SHARD_SUFFIX.search(n)]
    if shards:
        raise ValueError(f"--queues: {shards[0]!r} is an account shard: name its queue ({base_queue(shards[0])!r})")
    return list(dict.fromkeys(names))


_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Router:
    """Picks the broker queue of each job; one per process (the shard names are built once per queue)."""

    def __init__(self, settings: Settings) -> None:
        self.default = settings.queue
        self.fair = settings.fairness == "account"
        self._shards: dict[str, tuple[str, ...]] = {}

    def queue(self, queue: str | None, account_id: str) -> str:
        """The broker queue for a job of `queue` (None: the default) from `account_id`."""
        base = queue or self.default
        if not self.fair:
            return base
        shards = self._shards.get(base)
        if shards is None:
            shards = self._shards[base] = shard_names(base)
        return shards[zlib.crc32(account_id.encode("utf-8")) % SHARDS]

    def webhook(self, queue: str | None, ordered_by: OrderedBy | None, event: Any) -> tuple[str, str | None]:
        """The broker queue and hashed ordering key (None: unordered) of a webhook for a handler with
        `queue=` and `ordered_by=`. A user function that raises or returns something else than a str is
        logged, and the event is queued unordered rather than refused (Frame.io would retry it in vain)."""
        target = self.queue(queue, event.account_id)
        if ordered_by is None:
            return target, None
        try:
            return target, order_key(ordered_by, event)
        except Exception as exc:
            logger.error(
                "%s resource=%s: ordered_by function failed (%s); queued unordered",
                event.type,
                event.resource_id,
                type(exc).__name__,
            )
            return target, None

    def queue_for_job(self, queue: str | None, task_body: str, context: dict[str, Any] | None = None) -> str:
        """Where a stored job goes again (dead-letter replay): its handler's queue, the shard of the
        account in its body (or the action context), under today's settings."""
        return self.queue(queue, account_of(task_body, context))


def account_of(body: str, context: dict[str, Any] | None = None) -> str:
    """The account id in a Frame.io body (`account.id` in webhooks, `account_id` in actions), else ""."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        account = data.get("account")
        if isinstance(account, dict) and isinstance(account.get("id"), str):
            return str(account["id"])
        if isinstance(data.get("account_id"), str) and data["account_id"]:
            return str(data["account_id"])
    found = (context or {}).get("account_id")
    return found if isinstance(found, str) else ""


# -- per-key ordering: what `ordered_by=` makes of an event ---------------------------------------

OrderedBy = str | Callable[[Any], Any]


def order_key(ordered_by: OrderedBy, event: Any) -> str | None:
    """The hashed ordering key of `event`, or None when it has none (an empty id, a function returning
    None or ""): it then runs unordered. Hashed: a function's key may be anything, and it ends up in
    Redis key names and signed jobs. Raises whatever a user function raises."""
    if isinstance(ordered_by, str):
        value = getattr(event, f"{ordered_by}_id", "")
        material = f"{ordered_by}:{value}" if value else ""
    else:
        found = ordered_by(event)
        if found is None or found == "":
            return None
        if not isinstance(found, str | int):
            raise TypeError(f"ordered_by function returned {type(found).__name__}, not a str")
        material = f"key:{found}"
    if not material:
        return None
    return hashlib.sha256(b"frameio-kit-order\n" + material.encode("utf-8")).hexdigest()[:32]


def check_ordering(settings: Settings, ordered: Sequence[str]) -> None:
    """Ordering keeps its sequence beside the queue, in the broker's Redis: refuse it at start-up on
    another broker (RabbitMQ) rather than run the handler unordered. `ordered` names the handlers."""
    if ordered and not settings.broker_is_redis:
        raise ConfigurationError(
            f"ordered_by= ({', '.join(ordered)}) needs a Redis broker: FRAMEIO_KIT_BROKER_URL names another "
            "(docs/tenants.md)"
        )


__all__ = [
    "SHARDS",
    "Router",
    "account_of",
    "app_queues",
    "base_queue",
    "check_ordering",
    "order_key",
    "parse_queue_list",
    "physical_queues",
    "shard_names",
    "shard_of",
]
