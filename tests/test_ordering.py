"""Per-key ordering (`ordered_by=`, docs/tenants.md): events with one key run one at a time in the order
the ingress acknowledged them, through a failing attempt and a worker killed mid-handler; other keys run
meanwhile. The protocol's steps against a real Redis first, then real ingress and worker processes."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from frameio_kit import App, WebhookEvent
from frameio_kit.testing import IngressClient, webhook_payload
from ingress.producers.redis_broker import RedisProducer
from shared.errors import ConfigurationError
from shared.jobs import routing
from shared.jobs.ordering import OrderingStore
from shared.redis_keys import ledger_due_key, ledger_key, order_parked_key, order_state_key, order_waiting_key
from shared.settings import Settings
from tests.helpers import WEBHOOK_SECRET, RedisServer, post_signed, queued, wait_until

APP = "tests.apps.tenants_ordered:app"
KEY = "k" * 32


def _push(url: str, messages: list[tuple[str, str | None]], dedup_window: int = 600) -> list[bool]:
    """Queue (idempotency key, ordering key) messages on queue "q" as the ingress does, in this order."""

    async def scenario() -> list[bool]:
        client = Redis.from_url(url)
        producer = RedisProducer(client, "q", dedup_window=dedup_window, timeout=2.0, stale_after=600)
        try:
            return [await producer.push(f"m-{i}".encode(), i, order_key=o) for i, o in messages]
        finally:
            await producer.close()
            await client.aclose()

    return asyncio.run(scenario())


def _store(client: redis.Redis, **settings: Any) -> OrderingStore:
    return OrderingStore(client, Settings(FRAMEIO_KIT_VISIBILITY_TIMEOUT=60, **settings))


def test_each_new_message_gets_its_keys_next_sequence_at_enqueue(redis_server: RedisServer, redis_client):
    pushed = _push(redis_server.url, [("e1", KEY), ("e2", KEY), ("e1", KEY), ("free", None), ("e3", KEY)])
    assert pushed == [True, True, False, True, True]  # the duplicate delivery gets no sequence
    state = redis_client.hgetall(order_state_key(KEY))
    assert state == {b"last": b"3", b"e1": b"1", b"e2": b"2", b"e3": b"3"}
    assert redis_client.ttl(order_state_key(KEY)) > 0
    assert redis_client.llen("q") == 4


def test_later_messages_park_and_go_back_to_the_front_of_their_queue_in_turn(redis_server: RedisServer, redis_client):
    _push(redis_server.url, [("e1", KEY), ("e2", KEY), ("e3", KEY)])
    redis_client.delete("q")  # taken by workers
    store = _store(redis_client)

    assert store.gate(KEY, "e3", "q", lambda: b"m-e3").verdict == "parked"
    assert store.gate(KEY, "e3", "q", lambda: b"m-e3").verdict == "parked"  # a redelivered copy: parked again, once
    assert store.gate(KEY, "e1", "q", lambda: b"m-e1") == ("run", 1)
    assert store.gate(KEY, "e2", "q", lambda: b"m-e2").verdict == "parked"
    # A parked message is out of the ledger (the sweep must not queue it), and its key is waiting.
    assert set(redis_client.hkeys(ledger_key())) == {b"e1"}
    assert redis_client.zscore(order_waiting_key(), KEY) is not None

    assert store.finish(KEY, "e1") == 2  # e2 is the head now: queued again, in the ledger again
    assert redis_client.lrange("q", 0, -1) == [b"m-e2"]
    assert set(redis_client.hkeys(ledger_key())) == {b"e1", b"e2"}  # e1's entry goes with its completion marker
    assert redis_client.zscore(ledger_due_key(), "e2") is not None
    assert store.finish(KEY, "e1") == 0  # idempotent
    redis_client.delete("q")
    assert store.gate(KEY, "e2", "q", lambda: b"m-e2") == ("run", 2)
    assert store.finish(KEY, "e2") == 3
    assert store.finish(KEY, "e3") == 0
    assert redis_client.hgetall(order_state_key(KEY)) == {b"last": b"3", b"next": b"4"}
    assert redis_client.hlen(order_parked_key(KEY)) == 0
    assert redis_client.zscore(order_waiting_key(), KEY) is None


def test_a_message_refused_before_its_turn_is_skipped_when_its_turn_comes(redis_server: RedisServer, redis_client):
    _push(redis_server.url, [("e1", KEY), ("e2", KEY), ("e3", KEY)])
    store = _store(redis_client)
    assert store.gate(KEY, "e3", "q", lambda: b"m-e3").verdict == "parked"
    assert store.finish(KEY, "e2") == 0  # e2 expired: never to run
    redis_client.delete("q")
    assert store.finish(KEY, "e1") == 3  # e2's turn is skipped
    assert redis_client.lrange("q", 0, -1) == [b"m-e3"]


def test_unsequenced_and_passed_messages_run_at_once(redis_server: RedisServer, redis_client):
    _push(redis_server.url, [("e1", KEY), ("e2", KEY)])
    store = _store(redis_client)
    assert store.gate(KEY, "replayed-dead-letter", "q", lambda: b"m") == ("run", 0)
    assert store.finish(KEY, "replayed-dead-letter") == 0
    redis_client.hset(order_state_key(KEY), "next", 2)  # e1's turn was skipped (lost head)
    assert store.gate(KEY, "e1", "q", lambda: b"m-e1") == ("run", 1)
    assert store.finish(KEY, "e1") == 0  # not the head: moves nothing
    assert redis_client.hget(order_state_key(KEY), "next") == b"2"


def test_a_key_whose_head_is_lost_moves_on_after_the_bound(redis_server: RedisServer, redis_client):
    _push(redis_server.url, [("lost", KEY), ("e2", KEY), ("e3", KEY)])
    redis_client.delete("q")
    store = _store(redis_client)
    assert store.gate(KEY, "e3", "q", lambda: b"m-e3").verdict == "parked"
    assert store.gate(KEY, "e2", "q", lambda: b"m-e2").verdict == "parked"
    assert store.skip_stuck(lock_seconds=1) == 0  # within the bound: the head may still come
    redis_client.zadd(order_waiting_key(), {KEY: time.time() - 1})  # the bound has passed
    redis_client.delete("frameio-kit:order-waiting:sweep-lock")
    assert store.skip_stuck(lock_seconds=1) == 1
    assert redis_client.lrange("q", 0, -1) == [b"m-e2"]
    assert redis_client.hget(order_state_key(KEY), "next") == b"2"


def test_ordering_keys_by_scope_and_function():
    event = SimpleNamespace(resource_id="r-1", project_id="", workspace_id="w-1", account_id="a-1")
    keys = {scope: routing.order_key(scope, event) for scope in ("resource", "project", "workspace", "account")}
    assert keys["project"] is None  # no project: unordered
    assert len({keys["resource"], keys["workspace"], keys["account"]}) == 3
    assert all(k is not None and len(k) == 32 and "r-1" not in k for k in keys.values() if k)
    assert routing.order_key(lambda e: f"doc-{e.resource_id}", event) == routing.order_key(lambda e: "doc-r-1", event)
    assert routing.order_key(lambda e: None, event) is None
    with pytest.raises(TypeError):
        routing.order_key(lambda e: ["not", "a", "key"], event)


def test_the_ingress_sequences_an_ordered_handlers_events_by_the_key_its_function_returns(
    redis_server: RedisServer, redis_client
):
    app = App()
    secret = "ordering-test-secret-0123456789"

    @app.on_webhook("file.ready", secret=secret, ordered_by=lambda e: (e.model_extra or {}).get("doc"), queue="sync")
    async def sync(event: WebhookEvent) -> None: ...

    async def scenario() -> list[int]:
        async with IngressClient(app, settings=Settings(redis_url=redis_server.url)) as ingress:
            payloads = [
                webhook_payload("file.ready", resource_id=f"f-{i}", account_id="acc-1", doc=doc)
                for i, doc in enumerate(["d-1", "d-2", "d-1", None])
            ]
            return [(await ingress.post(p)).status_code for p in payloads]

    assert asyncio.run(scenario()) == [202] * 4
    messages = [json.loads(m) for m in queued(redis_client, "sync")]
    assert {m["properties"]["delivery_info"]["routing_key"] for m in messages} == {"sync.f01"}
    jobs = {k["resource_id"]: k for k in (json.loads(base64.b64decode(m["body"]))[1] for m in messages)}
    assert {r: j.get("queue") for r, j in jobs.items()} == dict.fromkeys(jobs, "sync")
    assert jobs["f-0"]["order_key"] == jobs["f-2"]["order_key"] != jobs["f-1"]["order_key"]
    assert "order_key" not in jobs["f-3"]  # the function returned None: unordered
    first = redis_client.hgetall(order_state_key(jobs["f-0"]["order_key"]))
    assert first == {
        b"last": b"2",
        jobs["f-0"]["idempotency_key"].encode(): b"1",
        jobs["f-2"]["idempotency_key"].encode(): b"2",
    }


def test_ordered_by_needs_a_redis_broker():
    rabbit = Settings(FRAMEIO_KIT_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")
    with pytest.raises(ConfigurationError, match="needs a Redis broker"):
        routing.check_ordering(rabbit, ["file.ready"])
    routing.check_ordering(rabbit, [])
    routing.check_ordering(Settings(), ["file.ready"])


# -- end to end ---------------------------------------------------------------------------------


def _records(redis_server: RedisServer, kind: str) -> Callable[[], list[dict[str, Any]]]:
    client = redis.Redis.from_url(redis_server.db_url(1))
    return lambda: [json.loads(x) for x in client.lrange(f"test:{kind}", 0, -1)]


def _send(url: str, resource: str, n: int, account: str = "acc-ordered", **extra: Any) -> None:
    payload = webhook_payload("file.ready", resource_id=resource, account_id=account, test_n=n, **extra)
    assert post_signed(url, payload, WEBHOOK_SECRET).status_code == 202


def _done(records: list[dict[str, Any]], resource: str) -> list[int]:
    return [r["n"] for r in records if r["resource"] == resource]


@pytest.mark.e2e
def test_events_of_one_resource_run_in_send_order_through_a_retry_while_others_go_on(
    start_ingress, start_worker, redis_server
):
    env = {"FRAMEIO_KIT_VISIBILITY_TIMEOUT": "30"}  # retry delays up to 15 s: retry_backoff=10 -> 5-10 s
    done, started = _records(redis_server, "done"), _records(redis_server, "started")
    url = start_ingress(APP, extra_env=env)
    worker = start_worker(APP, extra_env=env, concurrency=8)

    for n in range(1, 6):  # each acknowledged before the next is sent
        _send(url, "doc-1", n, test_fail_once=(n == 5))
    wait_until(lambda: _done(started(), "doc-1") == [1, 2, 3, 4, 5], timeout=30, what="the 5th's first attempt")
    others = [f"other-{i}" for i in range(20)]
    for i, resource in enumerate(others):
        _send(url, resource, 1, account=f"acc-other-{i % 4}")
    for n in range(6, 31):
        _send(url, "doc-1", n)

    finished = wait_until(lambda: len(_done(d := done(), "doc-1")) == 30 and d, timeout=90, what="all 30 events")
    assert _done(finished, "doc-1") == list(range(1, 31))
    assert [r["n"] for r in started() if r["resource"] == "doc-1"].count(5) == 2  # failed once, then retried
    position_of_5th = next(i for i, r in enumerate(finished) if r["resource"] == "doc-1" and r["n"] == 5)
    before = {r["resource"] for r in finished[:position_of_5th]}
    assert set(others) <= before, "the other resources waited for doc-1's retry"
    assert "parked file.ready resource=doc-1" in worker.output()


@pytest.mark.e2e
def test_a_key_held_by_a_killed_worker_continues_in_order_on_another_after_the_visibility_timeout(
    start_ingress, start_worker, redis_server, redis_client
):
    env = {"FRAMEIO_KIT_VISIBILITY_TIMEOUT": "8"}
    done, started = _records(redis_server, "done"), _records(redis_server, "started")
    url = start_ingress(APP, extra_env=env)
    workers = [start_worker(APP, extra_env=env, concurrency=8) for _ in range(2)]
    flag = "test:flag:unblock"
    for n in range(1, 11):
        _send(url, "doc-kill", n, **({"test_block": flag} if n == 3 else {}))

    # The 3rd blocks in its handler, holding the key: the 7 after it are parked, none runs.
    blocked = wait_until(
        lambda: [r for r in started() if r["resource"] == "doc-kill" and r["n"] == 3], timeout=30, what="the 3rd"
    )
    key = routing.order_key("resource", SimpleNamespace(resource_id="doc-kill"))
    assert key is not None
    wait_until(lambda: redis_client.hlen(order_parked_key(key)) == 7, timeout=30, what="the 7 later events to park")
    assert _done(done(), "doc-kill") == [1, 2]
    [holder] = [w for w in workers if w.pid == blocked[0]["pid"]]
    [other] = [w for w in workers if w is not holder]
    holder.signal(signal.SIGKILL)
    holder.proc.wait(timeout=10)
    redis.Redis.from_url(redis_server.db_url(1)).set(flag, "1")

    finished = wait_until(
        lambda: len(_done(d := done(), "doc-kill")) >= 10 and d, timeout=90, what="the key to go on after the kill"
    )
    assert _done(finished, "doc-kill") == list(range(1, 11))  # in order, none lost, none twice
    assert {r["pid"] for r in finished if r["resource"] == "doc-kill" and r["n"] >= 3} == {other.pid}
