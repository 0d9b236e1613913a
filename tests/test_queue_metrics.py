"""Queue gauges on /metrics: the oldest waiting message's age rises while no worker runs and falls to 0
once workers drain the queue; depth, in-flight and dead letters alongside; nothing when Redis is down."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.jobs import queue_stats
from shared.settings import Settings
from tests.helpers import WEBHOOK_SECRET, free_port, post_signed, wait_until, webhook_payload
from workers.metrics import QueueCollector

APP = "tests.apps.reliability:app"
TOKEN = {"Authorization": "Bearer scrape-me"}
AGE = ("frameio_kit_queue_oldest_age_seconds", (("queue", "frameio-kit"),))
DEPTH = ("frameio_kit_queue_depth", (("queue", "frameio-kit"),))
IN_FLIGHT = ("frameio_kit_queue_in_flight", (("queue", "frameio-kit"),))
DEAD = ("frameio_kit_dead_letters", ())


def gauges(url: str, **kw: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url, timeout=5, **kw)  # type: ignore[arg-type]
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name.startswith(("frameio_kit_queue", "frameio_kit_dead"))
    }


@pytest.mark.e2e
def test_oldest_message_age_rises_while_workers_are_stopped_and_falls_to_zero_when_they_drain(
    start_ingress, start_worker, redis_client
):
    url = start_ingress(APP, extra_env={"FRAMEIO_KIT_METRICS_TOKEN": "scrape-me"})
    metrics = url + "/metrics"
    start_worker(APP).stop()  # workers were running, and are now stopped
    assert gauges(metrics, headers=TOKEN) == {AGE: 0, DEPTH: 0, IN_FLIGHT: 0, DEAD: 0}

    for i in range(5):
        assert post_signed(url, webhook_payload(f"age-{i}"), WEBHOOK_SECRET).status_code == 202
    assert post_signed(url, webhook_payload("age-doomed", test_permanent=True), WEBHOOK_SECRET).status_code == 202
    first = gauges(metrics, headers=TOKEN)
    assert first[DEPTH] == 6
    assert first[IN_FLIGHT] == 0
    later = wait_until(
        lambda: (g := gauges(metrics, headers=TOKEN))[AGE] >= first[AGE] + 1.0 and g,
        timeout=10,
        what="the oldest message's age to rise",
    )
    assert later[DEPTH] == 6

    worker_port = free_port()
    start_worker(APP, extra_env={"FRAMEIO_KIT_WORKER_METRICS_PORT": str(worker_port)})
    drained = {AGE: 0, DEPTH: 0, IN_FLIGHT: 0, DEAD: 1}
    wait_until(lambda: gauges(metrics, headers=TOKEN) == drained, timeout=30, what="the queue to drain")
    # The worker's own /metrics serves the same gauges.
    wait_until(lambda: gauges(f"http://127.0.0.1:{worker_port}/metrics") == drained, timeout=10, what="worker gauges")


def test_queue_gauges_are_left_out_while_redis_is_down():
    settings = Settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert QueueCollector(settings).collect() == []


def test_age_is_unknown_for_a_message_without_an_enqueue_time():
    now = time.time()
    assert queue_stats.oldest_age(None, now) == 0.0
    assert queue_stats.oldest_age(b'{"headers": {"task": "x"}}', now) is None
    assert queue_stats.oldest_age(b"not json", now) is None
    stamped = b'{"headers": {"frameio_kit_enqueued_at": %f}}' % (now - 7.5)
    assert queue_stats.oldest_age(stamped, now) == pytest.approx(7.5)
