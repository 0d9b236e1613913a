"""The in-flight ledger: a message lost between the broker and a worker is queued again."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.asyncio import Redis

from ingress.producers.redis_broker import RedisProducer
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.ledger import sweep_ledger
from shared.redis_keys import done_key, ledger_due_key, ledger_key
from tests.helpers import WEBHOOK_SECRET, RedisServer, account_queue, post_signed, wait_until, webhook_payload


def _enqueue(url: str, keys: list[str], stale_after: float) -> None:
    async def scenario() -> None:
        client = Redis.from_url(url)
        producer = RedisProducer(client, "q", dedup_window=60, timeout=2.0, stale_after=stale_after)
        try:
            await asyncio.gather(*(producer.push(f"message-{k}".encode(), k) for k in keys))
        finally:
            await producer.close()
            await client.aclose()

    asyncio.run(scenario())


def test_every_queued_message_is_in_the_ledger(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    _enqueue(redis_server.url, ["a", "b", "c"], stale_after=60)
    assert redis_client.hgetall(ledger_key()) == {b"a": b"message-a", b"b": b"message-b", b"c": b"message-c"}
    assert redis_client.zcard(ledger_due_key()) == 3


def test_sweep_requeues_only_stranded_and_clears_completed(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    _enqueue(redis_server.url, ["lost", "completed"], stale_after=0.2)
    _enqueue(redis_server.url, ["fresh"], stale_after=600)
    redis_client.delete("q")  # popped by workers; "lost" died with its worker before being recorded
    redis_client.set(done_key("completed"), "1")
    time.sleep(0.3)  # let the first two deadlines pass (the condition under test is time itself)

    assert sweep_ledger(redis_client, "q", stale_after=600, lock_seconds=1) == 1
    assert redis_client.lrange("q", 0, -1) == [b"message-lost"]
    assert set(redis_client.hkeys(ledger_key())) == {b"lost", b"fresh"}


def test_completion_and_dead_letter_remove_the_entry(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    _enqueue(redis_server.url, ["done-1", "given-up"], stale_after=60)
    store = DeadLetterStore(redis_client, max_entries=10, retention=60, completion_ttl=60, stale_after=60)
    assert store.is_done("done-1") is False
    store.mark_done("done-1")
    store.release("given-up")
    assert redis_client.hlen(ledger_key()) == 0
    assert redis_client.zcard(ledger_due_key()) == 0


@pytest.mark.e2e
def test_webhook_popped_by_a_worker_that_died_before_recording_it_still_completes(
    start_ingress, start_worker, redis_client, records
) -> None:
    env = {"FRAMEIO_KIT_VISIBILITY_TIMEOUT": "2", "FRAMEIO_KIT_RETRY_BACKOFF_MAX": "0.5"}
    url = start_ingress(extra_env=env)
    assert post_signed(url, webhook_payload("stranded-1"), WEBHOOK_SECRET).status_code == 202
    assert redis_client.rpop(account_queue()) is not None  # kombu's BRPOP, then the worker is gone

    start_worker(extra_env=env)
    done = wait_until(lambda: records("done"), timeout=30, what="the ledger sweep to queue the event again")
    assert [d["resource"] for d in done] == ["stranded-1"]
    wait_until(lambda: redis_client.hlen(ledger_key()) == 0, timeout=10, what="the ledger entry to be cleared")
