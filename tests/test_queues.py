"""Per-handler queues (docs/tenants.md): `on_webhook(queue=...)` puts a handler's jobs on its own queue;
`frameio-kit worker --queues` consumes only the queues named (with their account shards), no `--queues`
every queue the integration uses; /metrics has gauges per queue. Real ingress, workers and Redis."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from frameio_kit import App
from frameio_kit.testing import webhook_payload
from shared.errors import ConfigurationError
from shared.jobs import queue_stats, routing
from shared.jobs.celery_config import celery_app
from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.settings import Settings
from tests.helpers import WEBHOOK_SECRET, cli_command, post_signed, queue_length, wait_until
from workers.queues import select

APP = "tests.apps.tenants_queues:app"


def _ran(redis_server_url: str) -> Callable[[], list[dict[str, Any]]]:
    client = redis.Redis.from_url(redis_server_url)
    return lambda: [json.loads(x) for x in client.lrange("test:ran", 0, -1)]


def _post(url: str, event_type: str, resource: str, account: str = "acc-queues") -> None:
    payload = webhook_payload(event_type, resource_id=resource, account_id=account)
    assert post_signed(url, payload, WEBHOOK_SECRET).status_code == 202


def _depths(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'^frameio_kit_queue_depth\{queue="([^"]+)"\} (\S+)$', text, re.M)}


@pytest.mark.e2e
def test_a_handler_on_queue_slow_runs_only_on_a_worker_consuming_slow(
    start_ingress, start_worker, redis_client, redis_server
):
    ran = _ran(redis_server.db_url(1))
    url = start_ingress(APP)
    fast = start_worker(APP, argv=cli_command("worker", APP, "--queues", "fast", "--concurrency", "4"))
    assert "consuming queues fast " in fast.output()

    _post(url, "file.created", "to-transcode")  # queue "slow"
    _post(url, "file.ready", "to-notify")  # queue "fast"
    wait_until(lambda: [r for r in ran() if r["handler"] == "fast"], timeout=30, what="the fast handler to run")
    # The slow job is still waiting, on its account's shard of `slow`; the fast worker never took it.
    assert queue_length(redis_client, "slow") == 1
    assert redis_client.llen(routing.shard_names("slow")[routing.shard_of("acc-queues")]) == 1
    assert [r["handler"] for r in ran()] == ["fast"]
    assert _depths(url) == {"frameio-kit": 0.0, "fast": 0.0, "slow": 1.0}

    slow = start_worker(APP, argv=cli_command("worker", APP, "--queues", "slow", "--concurrency", "4"))
    done = wait_until(lambda: [r for r in ran() if r["handler"] == "slow"], timeout=30, what="the slow handler")
    assert done[0]["pid"] == slow.pid
    assert [r["pid"] for r in ran() if r["handler"] == "fast"] == [fast.pid]
    wait_until(lambda: _depths(url)["slow"] == 0.0, timeout=10, what="the slow queue's gauge to drop")


@pytest.mark.e2e
def test_a_worker_without_queues_runs_every_queue_the_integration_uses(
    start_ingress, start_worker, redis_client, redis_server
):
    ran = _ran(redis_server.db_url(1))
    url = start_ingress(APP)
    worker = start_worker(APP, concurrency=4)
    for event_type, resource in (("file.created", "s-1"), ("file.ready", "f-1"), ("comment.created", "d-1")):
        _post(url, event_type, resource)
    done = wait_until(lambda: len(ran()) == 3 and ran(), timeout=30, what="all three handlers")
    assert sorted(r["handler"] for r in done) == ["default", "fast", "slow"]
    assert {r["pid"] for r in done} == {worker.pid}


def test_queues_named_to_celery_are_consumed_with_their_shards():
    """What `worker_init` adds to Celery's selection (plain `celery -A workers worker [-Q ...]` too)."""
    used = ["frameio-kit", "fast", "slow"]

    def consumed(selection: list[str] | None) -> set[str]:
        app: Celery = celery_app("t", Settings(), set_as_current=False)
        app.amqp.queues.select(selection)
        select(app, used, "frameio-kit")
        return set(app.amqp.queues.consume_from)

    assert consumed(None) == {q for name in used for q in routing.physical_queues(name)}
    assert consumed(["slow"]) == set(routing.physical_queues("slow"))
    assert consumed(["fast", "frameio-kit"]) == {
        *routing.physical_queues("fast"),
        *routing.physical_queues("frameio-kit"),
    }


def test_queue_names_are_checked(base_env):
    result = subprocess.run(
        cli_command("worker", APP, "--queues", "slow,no spaces"),
        env=base_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'no spaces' is not a queue name" in result.stderr
    with pytest.raises(ValueError, match="at least one"):
        routing.parse_queue_list(" , ")
    assert routing.parse_queue_list("slow, fast,slow") == ["slow", "fast"]
    with pytest.raises(ValueError, match="account shard"):
        routing.parse_queue_list("frameio-kit.f03")
    with pytest.raises(ConfigurationError, match="account shard"):
        App().on_webhook("file.ready", secret="s" * 32, queue="video.f01")


def test_gauges_cover_each_queue_and_its_shards(redis_client):
    now = time.time()

    def stamped(age: float) -> bytes:
        return json.dumps({"headers": {ENQUEUED_AT_HEADER: now - age}}).encode()

    redis_client.lpush("frameio-kit", stamped(2))
    redis_client.lpush("frameio-kit.f03", stamped(50), stamped(1))  # the tail (oldest) of a shard counts
    redis_client.lpush("slow.f15", stamped(7))
    stats = queue_stats.read(redis_client, redis_client, ["frameio-kit", "slow", "fast"])
    assert {q: d for q, (d, _) in stats.queues.items()} == {"frameio-kit": 3, "slow": 1, "fast": 0}
    ages = {q: a for q, (_, a) in stats.queues.items()}
    assert ages["frameio-kit"] == pytest.approx(50, abs=1) and ages["slow"] == pytest.approx(7, abs=1)
    assert ages["fast"] == 0.0
    samples = {
        (family.name, sample.labels.get("queue")): sample.value
        for family in queue_stats.families(stats, ["frameio-kit", "slow", "fast"])
        for sample in family.samples
    }
    assert samples[("frameio_kit_queue_depth", "slow")] == 1
    assert samples[("frameio_kit_queue_oldest_age_seconds", "frameio-kit")] == pytest.approx(50, abs=1)
    assert samples[("frameio_kit_queue_in_flight", "frameio-kit")] == 0
