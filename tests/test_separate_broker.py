"""A broker apart from REDIS_URL (another database, or another redis-server): queue traffic goes to the
broker, state to REDIS_URL, in the ingress, the workers, the queue gauges and the ledger sweeper."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from shared.redis_keys import ledger_key
from tests.helpers import (
    WEBHOOK_SECRET,
    RedisServer,
    account_queue,
    free_port,
    post_signed,
    queue_length,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e

QUEUE = "frameio-kit"


@pytest.fixture(params=["another-database", "another-server"])
def broker(request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """The broker's URL: db 2 of the suite's server (db 0 is REDIS_URL, db 1 the test records), or a
    second redis-server of its own."""
    if request.param == "another-database":
        url = redis_server.db_url(2)
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    second = RedisServer(tmp_path / "broker-redis")
    second.workdir.mkdir()
    second.start()
    try:
        yield second.url
    finally:
        second.stop()


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf'^{name}\{{queue="{QUEUE}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_every_webhook_is_handled_with_the_broker_apart_from_redis_url(
    broker, start_ingress, start_worker, redis_client, records
):
    env = {"FRAMEIO_KIT_BROKER_URL": broker}
    url = start_ingress(extra_env=env)
    resources = [f"apart-{i}" for i in range(12)]
    for resource in resources:
        assert post_signed(url, webhook_payload(resource), WEBHOOK_SECRET).status_code == 202

    queue_side = redis.Redis.from_url(broker)
    state_side = redis_client  # REDIS_URL: db 0 of the suite's server
    assert queue_length(queue_side) == len(resources)
    assert queue_length(state_side) == 0
    assert queue_side.hlen(ledger_key()) == len(resources)
    assert state_side.hlen(ledger_key()) == 0
    assert not list(state_side.scan_iter("frameio-kit:dedup:*"))
    assert len(list(queue_side.scan_iter("frameio-kit:dedup:*"))) == len(resources)

    metrics = httpx.get(url + "/metrics", timeout=5).text
    assert _gauge(metrics, "frameio_kit_queue_depth") == len(resources)

    metrics_port = free_port()
    start_worker(extra_env={**env, "FRAMEIO_KIT_WORKER_METRICS_PORT": str(metrics_port)})
    done = wait_until(
        lambda: len(records("done")) == len(resources) and records("done"), timeout=30, what="every webhook handled"
    )
    assert sorted(d["resource"] for d in done) == sorted(resources)
    wait_until(lambda: queue_side.hlen(ledger_key()) == 0, timeout=10, what="the ledger to empty on the broker")
    assert not list(state_side.scan_iter("frameio-kit:done:*"))
    assert len(list(queue_side.scan_iter("frameio-kit:done:*"))) == len(resources)

    worker_metrics = wait_until(
        lambda: _scrape(f"http://127.0.0.1:{metrics_port}/metrics"), timeout=10, what="the worker's metrics"
    )
    assert _gauge(worker_metrics, "frameio_kit_queue_depth") == 0.0
    assert _gauge(httpx.get(url + "/metrics", timeout=5).text, "frameio_kit_queue_depth") == 0.0


def test_the_ledger_sweep_reads_the_broker(broker, start_ingress, start_worker, redis_client, records):
    env = {
        "FRAMEIO_KIT_BROKER_URL": broker,
        "FRAMEIO_KIT_VISIBILITY_TIMEOUT": "2",
        "FRAMEIO_KIT_RETRY_BACKOFF_MAX": "0.5",
    }
    url = start_ingress(extra_env=env)
    assert post_signed(url, webhook_payload("stranded-apart"), WEBHOOK_SECRET).status_code == 202
    queue_side = redis.Redis.from_url(broker)
    assert queue_side.rpop(account_queue()) is not None  # kombu's BRPOP, then the worker is gone

    start_worker(extra_env=env)
    done = wait_until(lambda: records("done"), timeout=30, what="the ledger sweep to queue the event again")
    assert [d["resource"] for d in done] == ["stranded-apart"]
    wait_until(lambda: queue_side.hlen(ledger_key()) == 0, timeout=10, what="the ledger entry to be cleared")


def _scrape(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None
