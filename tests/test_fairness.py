"""Fairness between accounts (docs/tenants.md): with FRAMEIO_KIT_FAIRNESS=account (the default) an
account's backlog does not hold up another account's new events; with `off` it does (so the test
measures something). Real ingress, real Redis, one real worker process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import redis

from frameio_kit.testing import webhook_payload
from shared.jobs import routing
from shared.jobs.routing import Router
from shared.settings import Settings
from tests.helpers import WEBHOOK_SECRET, queue_length, sign_request, wait_until

APP = "tests.apps.tenants_fair:app"
A_EVENTS = 2000
B_EVENTS = 10
ACCOUNT_A = "acct-bulk-upload"


def _account_b() -> str:
    """An account whose shard differs from A's (the test is about two shards, not a collision)."""
    return next(
        f"acct-other-{i}" for i in range(100) if routing.shard_of(f"acct-other-{i}") != routing.shard_of(ACCOUNT_A)
    )


def _payload(account: str, i: int) -> dict[str, object]:
    return webhook_payload("file.ready", resource_id=f"{account}-file-{i}", account_id=account)


async def _post_all(url: str, payloads: list[dict[str, object]], concurrency: int = 32) -> list[int]:
    """Signed posts, many at a time; returns once every one of them was answered."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def post(payload: dict[str, object]) -> int:
            body, headers = sign_request(payload, WEBHOOK_SECRET)
            async with limit:
                return (await client.post(url, content=body, headers=headers)).status_code

        return list(await asyncio.gather(*(post(p) for p in payloads)))


def _enqueue_a_then_b(url: str, account_b: str) -> None:
    """A's 2,000 webhooks, every one acknowledged, then B's 10: the ingress's acknowledgement order."""
    assert asyncio.run(_post_all(url, [_payload(ACCOUNT_A, i) for i in range(A_EVENTS)])) == [202] * A_EVENTS
    assert asyncio.run(_post_all(url, [_payload(account_b, i) for i in range(B_EVENTS)])) == [202] * B_EVENTS


def _completions(redis_server_url: str) -> Callable[[], list[str]]:
    client = redis.Redis.from_url(redis_server_url)
    return lambda: [x.decode() for x in client.lrange("test:fair", 0, -1)]


@pytest.mark.e2e
def test_an_accounts_new_events_do_not_wait_behind_another_accounts_backlog(
    start_ingress, start_worker, redis_client, redis_server
):
    account_b = _account_b()
    assert routing.shard_of(account_b) != routing.shard_of(ACCOUNT_A)
    url = start_ingress(APP)
    _enqueue_a_then_b(url, account_b)
    shards = routing.shard_names("frameio-kit")
    assert redis_client.llen(shards[routing.shard_of(ACCOUNT_A)]) == A_EVENTS
    assert redis_client.llen(shards[routing.shard_of(account_b)]) == B_EVENTS

    start_worker(APP, concurrency=4)
    done = _completions(redis_server.db_url(1))
    order = wait_until(
        lambda: (d := done()).count(account_b) == B_EVENTS and d, timeout=120, what="B's events to complete"
    )
    # Every B event completed before A's 150th.
    a_150th = [i for i, account in enumerate(order) if account == ACCOUNT_A][149:150]
    last_b = max(i for i, account in enumerate(order) if account == account_b)
    assert not a_150th or last_b < a_150th[0], f"B's last event completed at position {last_b}"
    assert order.count(ACCOUNT_A) < 150


@pytest.mark.e2e
def test_with_fairness_off_the_same_run_leaves_the_second_account_behind_the_backlog(
    start_ingress, start_worker, redis_client, redis_server
):
    off = {"FRAMEIO_KIT_FAIRNESS": "off"}
    account_b = _account_b()
    url = start_ingress(APP, extra_env=off)
    _enqueue_a_then_b(url, account_b)
    assert redis_client.llen("frameio-kit") == A_EVENTS + B_EVENTS  # one FIFO queue, no shards
    assert queue_length(redis_client) == A_EVENTS + B_EVENTS

    start_worker(APP, extra_env=off, concurrency=4)
    done = _completions(redis_server.db_url(1))
    order = wait_until(lambda: (d := done()).count(ACCOUNT_A) >= 300 and d, timeout=120, what="300 of A's events")
    assert account_b not in order  # B waits behind all of A's backlog


def test_an_accounts_shard_is_the_same_in_every_process_and_fairness_off_is_one_queue():
    # CRC-32 of the id: the same in the ingress, every worker and the CLI, across restarts and versions.
    assert routing.shard_of("acc-1") == 1 and routing.shard_of("acct-bulk-upload") == 7
    fair, off = Router(Settings()), Router(Settings(FRAMEIO_KIT_FAIRNESS="off"))
    assert fair.queue(None, "acc-1") == "frameio-kit.f01"
    assert fair.queue("slow", "acc-1") == "slow.f01"
    assert off.queue(None, "acc-1") == "frameio-kit" and off.queue("slow", "acc-1") == "slow"
    assert routing.base_queue("slow.f01") == "slow" and routing.base_queue("frameio-kit") == "frameio-kit"
    # A replay finds the account in the stored body (webhooks) or in the action's context.
    body = json.dumps(webhook_payload("file.ready", account_id="acc-1"))
    assert fair.queue_for_job(None, body) == "frameio-kit.f01"
    assert fair.queue_for_job("exports", "{}", {"account_id": "acc-1"}) == "exports.f01"
