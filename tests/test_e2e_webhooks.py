"""End to end: real redis-server, ingress and workers started through the CLI."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from frameio_kit.testing import celery_command
from tests.conftest import TEST_APP
from tests.helpers import (
    WEBHOOK_SECRET,
    RedisServer,
    post_signed,
    queue_length,
    queued,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e


@pytest.mark.smoke
def test_webhook_is_acknowledged_before_a_slow_handler_finishes(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    worker = start_worker()
    started = time.perf_counter()
    response = post_signed(url, webhook_payload("slow-1", test_sleep=5), WEBHOOK_SECRET)
    ack_seconds = time.perf_counter() - started

    assert response.status_code == 202
    assert ack_seconds < 1.0
    assert records("done") == []
    done = wait_until(lambda: records("done"), timeout=15, what="the slow handler to finish")
    assert done[0]["resource"] == "slow-1"
    assert done[0]["pid"] == worker.pid
    assert done[0]["pid"] != os.getpid()


def test_webhook_survives_worker_crash(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    first = start_worker()
    assert post_signed(url, webhook_payload("crash-1", test_sleep=3), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: records("started"), timeout=10, what="the handler to start")
    first.signal(signal.SIGKILL)
    first.proc.wait(timeout=5)
    assert records("done") == []

    second = start_worker()
    done = wait_until(lambda: records("done"), timeout=30, what="redelivery to the second worker")
    assert [d["resource"] for d in done] == ["crash-1"]
    assert done[0]["pid"] == second.pid


def test_redis_outage_gives_503_then_recovers_without_restarts(
    start_ingress, start_worker, base_env, tmp_path, records
):
    outage = RedisServer(tmp_path / "outage-redis")
    outage.workdir.mkdir()
    outage.start()
    env = {"REDIS_URL": outage.url, "TEST_RECORD_URL": base_env["TEST_RECORD_URL"]}
    try:
        url = start_ingress(extra_env=env)
        start_worker(extra_env=env)
        assert post_signed(url, webhook_payload("before-outage"), WEBHOOK_SECRET).status_code == 202
        wait_until(lambda: [d for d in records("done") if d["resource"] == "before-outage"], timeout=15)

        outage.stop()
        started = time.perf_counter()
        during = post_signed(url, webhook_payload("during-outage"), WEBHOOK_SECRET)
        assert during.status_code == 503
        assert time.perf_counter() - started < 5.0
        assert httpx.get(url + "/readyz", timeout=5).status_code == 503

        outage.start()
        wait_until(lambda: httpx.get(url + "/readyz", timeout=5).status_code == 200, timeout=15)
        assert post_signed(url, webhook_payload("after-outage"), WEBHOOK_SECRET).status_code == 202
        wait_until(
            lambda: [d for d in records("done") if d["resource"] == "after-outage"],
            timeout=60,
            what="the worker to reconnect and handle the event",
        )
        assert not [d for d in records("started") if d["resource"] == "during-outage"]
    finally:
        outage.stop()


def test_concurrent_webhooks_each_run_exactly_once(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    start_worker(concurrency=16)
    start_worker(concurrency=16)
    resources = [f"burst-{i}" for i in range(100)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda r: post_signed(url, webhook_payload(r), WEBHOOK_SECRET).status_code, resources))

    assert statuses == [202] * 100
    wait_until(lambda: len(records("done")) >= 100, timeout=60, what="100 handlers to finish")
    # Once the queue is empty and nothing is unacknowledged, no delivery is left that could run twice.
    wait_until(
        lambda: queue_length(redis_client) == 0 and redis_client.hlen("unacked") == 0,
        timeout=30,
        what="every message to be acknowledged",
    )
    done = [d["resource"] for d in records("done")]
    assert sorted(done) == sorted(resources)


def test_plain_celery_worker_consumes_the_same_queue(start_ingress, start_worker, redis_client, records, base_env):
    url = start_ingress()
    worker = start_worker(
        argv=celery_command("worker", "-P", "threads", "-c", "4", "-l", "INFO", "-n", f"plain-{time.time_ns()}@%h"),
        extra_env={"FRAMEIO_APP": TEST_APP},
    )
    assert post_signed(url, webhook_payload("plain-celery"), WEBHOOK_SECRET).status_code == 202
    done = wait_until(lambda: records("done"), timeout=15, what="celery -A workers to run the handler")
    assert done[0]["pid"] == worker.pid


def test_worker_starts_without_signing_secrets(start_worker, base_env):
    assert "WEBHOOK_SECRET" not in base_env
    worker = start_worker()
    assert worker.proc.poll() is None


@pytest.mark.smoke
def test_handler_failure_is_retried_with_traceback_logged(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    worker = start_worker()
    assert post_signed(url, webhook_payload("flaky-1", test_fail_times=2), WEBHOOK_SECRET).status_code == 202
    done = wait_until(lambda: records("done"), timeout=30, what="the third attempt to succeed")
    assert done[0]["resource"] == "flaky-1"
    assert len(records("started")) == 3
    output = worker.output()
    assert "Traceback" in output and "planned failure 1" in output


def test_task_message_carries_no_secret(start_ingress, redis_client):
    url = start_ingress()
    assert post_signed(url, webhook_payload("no-secret"), WEBHOOK_SECRET).status_code == 202
    raw = queued(redis_client)
    assert len(raw) == 1
    message = json.loads(raw[0])
    assert message["headers"]["task"] == "frameio_kit.handle_webhook"
    assert "no-secret" in message["headers"]["kwargsrepr"]
    assert WEBHOOK_SECRET.encode() not in raw[0]
    assert b"v0=" not in raw[0]
