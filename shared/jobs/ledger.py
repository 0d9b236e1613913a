"""The in-flight ledger: every accepted webhook message until its handler completes.

kombu's Redis transport pops a message (BRPOP) before it records it as unacknowledged; a worker
killed between the two loses it, and visibility-timeout redelivery cannot bring it back. So the
ingress writes each new message into the ledger in the same atomic call that queues it; a worker
refreshes the entry's deadline when it starts the handler and removes it on completion or
dead-lettering; and a sweep in the workers queues again any entry whose deadline passed with no
completion marker. The completion marker makes the rare extra copy a no-op.
"""

from __future__ import annotations

import logging
import time

import redis

from shared.jobs.kombu_redis import routing_key_of
from shared.redis_keys import done_key, ledger_due_key, ledger_key, ledger_sweep_lock_key

logger = logging.getLogger("frameio_kit.ledger")

_BATCH = 500


def sweep_ledger(client: redis.Redis, queue: str, stale_after: float, lock_seconds: int) -> int:
    """Queue again every stranded entry (deadline passed, not completed); returns how many.

    One worker sweeps at a time (a lock with expiry, so a dead sweeper does not block the rest).
    """
    if not client.set(ledger_sweep_lock_key(), "1", nx=True, ex=max(1, lock_seconds)):
        return 0
    requeued = 0
    now = time.time()
    due = [
        k.decode() if isinstance(k, bytes) else str(k)
        for k in client.zrangebyscore(ledger_due_key(), "-inf", now, start=0, num=_BATCH)
    ]
    for key in due:
        check = client.pipeline(transaction=False)
        check.exists(done_key(key))
        check.hget(ledger_key(), key)
        completed, message = check.execute()
        pipe = client.pipeline(transaction=True)
        if completed or message is None:
            pipe.hdel(ledger_key(), key)
            pipe.zrem(ledger_due_key(), key)
        else:
            # Back onto the queue it was sent to (a handler's queue, an account's shard), else `queue`.
            pipe.lpush(routing_key_of(message) or queue, message)
            pipe.zadd(ledger_due_key(), {key: now + stale_after})
            requeued += 1
        pipe.execute()
    if requeued:
        logger.warning("ledger: queued %d stranded webhook messages again", requeued)
    return requeued
