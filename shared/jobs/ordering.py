"""Per-key ordering state in the broker's Redis (docs/tenants.md): the sequence each message got at
enqueue, the one allowed to run, and the messages parked until their turn.

The ingress gives each new message of an ordered handler the next sequence number of its key, in the
same Lua call that queues it (ingress/producers/enqueue.lua). A worker runs a message only when it is
its key's head (`gate`); a later one is parked here, out of the queue and out of the in-flight ledger,
and acknowledged. When the head is done with (`finish`: completed, dead-lettered or refused) the next
sequence becomes the head and its parked message, if it is here already, goes back to the front of its
queue and into the ledger, in one atomic call. A head nobody has seen for `hold_bound` seconds (its
message lost: purged, or refused before it could be sequenced) is skipped (`skip_stuck`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Literal, NamedTuple

import redis

from shared.redis_direct import SyncScriptCaller
from shared.redis_keys import (
    ledger_due_key,
    ledger_key,
    order_parked_key,
    order_state_key,
    order_sweep_lock_key,
    order_waiting_key,
)
from shared.settings import Settings

logger = logging.getLogger("frameio_kit.ordering")

_LUA = resources.files("shared.jobs").joinpath("ordering.lua").read_text(encoding="utf-8")
_SWEEP_BATCH = 100


def hold_bound(settings: Settings) -> float:
    """Seconds a key waits for a head nobody has seen before skipping it: past the ledger's own
    redelivery of a message lost between the broker and a worker (`ledger_stale_after`), plus one
    visibility timeout for it to reach a worker again."""
    return settings.ledger_stale_after + settings.visibility_timeout


def state_ttl(settings: Settings) -> int:
    """How long an idle key's state lives: every genuine message of the key is runnable that long
    (FRAMEIO_KIT_JOB_MAX_AGE), plus the ledger's redelivery. An expired state never blocks: a message
    whose sequence is gone runs unordered."""
    return int(settings.job_max_age_seconds + settings.ledger_stale_after)


class Gate(NamedTuple):
    """What `gate` decided, and the message's sequence (0: not sequenced)."""

    verdict: Literal["run", "parked"]
    seq: int


class OrderingStore:
    """The three atomic steps of the ordering protocol, on the broker's Redis (synchronous: workers)."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._script = client.register_script(_LUA)
        self._hold = hold_bound(settings)
        self._stale_after = settings.ledger_stale_after
        self._ttl = state_ttl(settings)
        self._local = threading.local()

    def _call(self, mode: str, key: str, idem: str = "", parked: bytes = b"") -> list[int]:
        """One EVALSHA on a connection the calling thread keeps (shared/redis_direct.py), as the
        completion scripts do: these calls are on every ordered task's path."""
        caller: SyncScriptCaller | None = getattr(self._local, "caller", None)
        if caller is None:
            caller = self._local.caller = SyncScriptCaller(self._redis)
        now = time.time()
        keys = (order_state_key(key), order_parked_key(key), order_waiting_key(), ledger_key(), ledger_due_key())
        args = (mode, key, idem, now, now + self._hold, now + self._stale_after, self._ttl, parked)
        return [int(x) for x in caller.call(self._script, keys, args)]

    def gate(self, key: str, idem: str, queue: str, message: Callable[[], bytes]) -> Gate:
        """Run now, or park the message `message()` builds (for `queue`) until its sequence is the head.
        The message is built only to be parked (the head, the common case, needs none). Idempotent: a
        redelivered copy of a parked message is parked again in the same place."""
        if "\n" in queue or "\n" in idem:
            raise ValueError("queue and idempotency key cannot hold a newline")
        verdict, seq = self._call("gate", key, idem)
        if verdict == 2:  # to be parked: again, with the message (the state may have moved meanwhile)
            verdict, seq = self._call("gate", key, idem, f"{queue}\n{idem}\n".encode() + message())
        return Gate("parked" if verdict == 1 else "run", seq)

    def finish(self, key: str, idem: str) -> int:
        """The message is done with: when it was the head, the next sequence becomes the head and its
        parked message is queued again. Returns the sequence released (0: none). Idempotent."""
        _, released = self._call("finish", key, idem)
        return released

    def skip_stuck(self, lock_seconds: int) -> int:
        """Let the earliest parked message of every key whose head was not seen within the bound run;
        returns how many keys moved on. One worker at a time (a lock with expiry)."""
        if not self._redis.set(order_sweep_lock_key(), "1", nx=True, ex=max(1, lock_seconds)):
            return 0
        moved = 0
        for raw in self._redis.zrangebyscore(order_waiting_key(), "-inf", time.time(), start=0, num=_SWEEP_BATCH):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            head, released = self._call("skip", key)
            if released:
                moved += 1
                logger.warning(
                    "ordering: key %s… skipped sequences %d-%d (the head was not seen for %.0fs); %d runs now",
                    key[:12],
                    head,
                    released - 1,
                    self._hold,
                    released,
                )
        return moved
