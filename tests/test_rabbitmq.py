"""The core end-to-end flows with RabbitMQ as the Celery broker (Redis still holds dedup and state).

Skipped only when no RabbitMQ answers on 127.0.0.1:5672. Each test uses its own queue.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from kombu import Connection

from shared.jobs import routing
from shared.jobs.dead_letters import DeadLetterStore
from tests.helpers import (
    ROOT,
    WEBHOOK_SECRET,
    cli_command,
    free_port,
    post_signed,
    queue_length,
    sign_request,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
RELIABILITY_APP = "tests.apps.reliability:app"


def _rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbit_env() -> Iterator[dict[str, str]]:
    if not _rabbitmq_reachable():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    queue = f"frameio-kit-test-{uuid.uuid4().hex[:10]}"
    yield {"FRAMEIO_KIT_BROKER_URL": RABBITMQ_URL, "FRAMEIO_KIT_QUEUE": queue}
    with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
        for name in routing.physical_queues(queue):
            conn.default_channel.queue_delete(name)


def _queue_depth(queue: str) -> int:
    """Messages waiting in `queue` and its account shards (docs/tenants.md), declared as Celery declares them."""
    with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
        channel = conn.default_channel
        return sum(
            int(channel.queue_declare(name, durable=True, auto_delete=False).message_count)
            for name in routing.physical_queues(queue)
        )


def _done_for(records, resource: str) -> list[dict]:
    return [d for d in records("done") if d["resource"] == resource]


def test_webhook_is_in_rabbitmq_when_acknowledged_and_a_worker_runs_it(
    start_ingress, start_worker, redis_client, records, rabbit_env
):
    url = start_ingress(RELIABILITY_APP, extra_env=rabbit_env)
    assert post_signed(url, webhook_payload("rabbit-1"), WEBHOOK_SECRET).status_code == 202
    # Durable acknowledgement: the 202 came after the broker confirmed the message.
    assert _queue_depth(rabbit_env["FRAMEIO_KIT_QUEUE"]) == 1
    assert queue_length(redis_client, rabbit_env["FRAMEIO_KIT_QUEUE"]) == 0

    worker = start_worker(RELIABILITY_APP, extra_env=rabbit_env)
    done = wait_until(lambda: _done_for(records, "rabbit-1"), timeout=30, what="the worker to run the handler")
    assert done[0]["pid"] == worker.pid


def test_same_delivery_five_times_runs_once_over_rabbitmq(
    start_ingress, start_worker, redis_client, records, rabbit_env
):
    url = start_ingress(RELIABILITY_APP, extra_env=rabbit_env)
    body, headers = sign_request(webhook_payload("rabbit-dup"), WEBHOOK_SECRET)

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(
            pool.map(lambda _: httpx.post(url + "/", content=body, headers=headers, timeout=10).status_code, range(5))
        )
    assert statuses == [202] * 5
    assert _queue_depth(rabbit_env["FRAMEIO_KIT_QUEUE"]) == 1

    start_worker(RELIABILITY_APP, extra_env=rabbit_env, concurrency=1)
    wait_until(lambda: _done_for(records, "rabbit-dup"), timeout=30, what="the handler to run")
    wait_until(lambda: _queue_depth(rabbit_env["FRAMEIO_KIT_QUEUE"]) == 0, timeout=10, what="the queue to drain")
    assert len(_done_for(records, "rabbit-dup")) == 1


def test_webhook_survives_worker_crash_over_rabbitmq(start_ingress, start_worker, redis_client, records, rabbit_env):
    url = start_ingress(RELIABILITY_APP, extra_env=rabbit_env)
    first = start_worker(RELIABILITY_APP, extra_env=rabbit_env)
    assert post_signed(url, webhook_payload("rabbit-crash", test_sleep=3), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: records("started"), timeout=20, what="the handler to start")
    first.signal(signal.SIGKILL)
    first.proc.wait(timeout=5)

    second = start_worker(RELIABILITY_APP, extra_env=rabbit_env)
    done = wait_until(lambda: _done_for(records, "rabbit-crash"), timeout=30, what="redelivery to the second worker")
    assert [d["pid"] for d in done] == [second.pid]


def test_retries_dead_letters_and_replay_over_rabbitmq(
    start_ingress, start_worker, redis_client, records, base_env, rabbit_env
):
    url = start_ingress(RELIABILITY_APP, extra_env=rabbit_env)
    start_worker(RELIABILITY_APP, extra_env=rabbit_env)
    assert post_signed(url, webhook_payload("rabbit-flaky", test_fail_times=2), WEBHOOK_SECRET).status_code == 202
    assert post_signed(url, webhook_payload("rabbit-doomed", test_fail_times=3), WEBHOOK_SECRET).status_code == 202

    wait_until(lambda: _done_for(records, "rabbit-flaky"), timeout=30, what="attempt 3 to succeed")
    store = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    wait_until(lambda: store.count() == 1, timeout=30, what="the dead letter")
    [letter] = store.recent()
    assert letter.job.resource_id == "rabbit-doomed" and len(letter.attempts) == 3

    replay = subprocess.run(
        cli_command("dead-letters", "replay", "--all"),
        env={**base_env, **rabbit_env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    wait_until(lambda: _done_for(records, "rabbit-doomed"), timeout=30, what="the replayed event to complete")


def test_concurrent_webhooks_each_run_exactly_once_over_rabbitmq(
    start_ingress, start_worker, redis_client, records, rabbit_env
):
    url = start_ingress(RELIABILITY_APP, extra_env=rabbit_env)
    start_worker(RELIABILITY_APP, extra_env=rabbit_env, concurrency=16)
    resources = [f"rabbit-burst-{i}" for i in range(60)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda r: post_signed(url, webhook_payload(r), WEBHOOK_SECRET).status_code, resources))
    assert statuses == [202] * 60
    wait_until(lambda: len(records("done")) >= 60, timeout=60, what="60 handlers to finish")
    wait_until(lambda: _queue_depth(rabbit_env["FRAMEIO_KIT_QUEUE"]) == 0, timeout=10, what="the queue to drain")
    assert sorted(d["resource"] for d in records("done")) == sorted(resources)


def test_unreachable_rabbitmq_gives_503_within_the_budget(start_ingress, redis_client, rabbit_env):
    dead_broker = {**rabbit_env, "FRAMEIO_KIT_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}
    url = start_ingress(RELIABILITY_APP, extra_env=dead_broker)
    started = time.perf_counter()
    response = post_signed(url, webhook_payload("rabbit-down"), WEBHOOK_SECRET)
    assert response.status_code == 503
    assert time.perf_counter() - started < 5.0
    # The claim was released: once the broker is back, Frame.io's retry is accepted, not a "duplicate".
    assert redis_client.keys("frameio-kit:dedup:*") == []
