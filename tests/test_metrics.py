"""Prometheus metrics: the ingress's /metrics and a worker's counters agree with what was sent and handled."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import (
    ACTION_SECRET,
    WEBHOOK_SECRET,
    action_payload,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)
from tests.metrics_support import samples

pytestmark = pytest.mark.e2e


def test_metrics_count_what_was_sent_and_handled(start_ingress, start_worker, redis_client, records):
    url = start_ingress(extra_env={"FRAMEIO_KIT_METRICS_TOKEN": "scrape-me"})
    worker_port = free_port()
    start_worker(extra_env={"FRAMEIO_KIT_WORKER_METRICS_PORT": str(worker_port)})
    worker_url = f"http://127.0.0.1:{worker_port}/metrics"

    for i in range(20):
        assert post_signed(url, webhook_payload(f"m-{i}"), WEBHOOK_SECRET).status_code == 202
    for i in range(2):
        assert post_signed(url, webhook_payload(f"flaky-{i}", test_fail_times=1), WEBHOOK_SECRET).status_code == 202
    for i in range(3):
        assert post_signed(url, webhook_payload(f"forged-{i}"), "wrong-secret").status_code == 401
    assert post_signed(url, webhook_payload("m-0"), WEBHOOK_SECRET).status_code == 202  # a duplicate delivery
    assert post_signed(url, action_payload("metrics-1"), ACTION_SECRET).status_code == 200
    wait_until(lambda: len(records("done")) >= 22, timeout=30, what="22 handled webhooks")

    assert httpx.get(url + "/metrics", timeout=5).status_code == 401
    ingress = samples(url + "/metrics", headers={"Authorization": "Bearer scrape-me"})
    requests = "frameio_kit_ingress_requests_total"
    assert ingress[(requests, (("kind", "webhook"), ("outcome", "enqueued")))] == 22
    assert ingress[(requests, (("kind", "webhook"), ("outcome", "duplicate")))] == 1
    assert ingress[(requests, (("kind", "webhook"), ("outcome", "rejected_401")))] == 3
    assert ingress[(requests, (("kind", "action"), ("outcome", "answered")))] == 1
    assert ingress[("frameio_kit_ingress_enqueue_seconds_count", ())] == 23
    assert ingress[("frameio_kit_ingress_action_seconds_count", ())] == 1

    def worker_settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        current = samples(worker_url)
        key = ("frameio_kit_worker_tasks_total", (("event_type", "file.ready"), ("outcome", "done")))
        return current if current.get(key) == 22 else {}

    worker = wait_until(worker_settled, timeout=15, what="the worker's counters")
    tasks = "frameio_kit_worker_tasks_total"
    assert worker[(tasks, (("event_type", "file.ready"), ("outcome", "retried")))] == 2
    assert worker[("frameio_kit_worker_retries_total", (("event_type", "file.ready"),))] == 2
    assert worker[("frameio_kit_worker_handler_seconds_count", (("event_type", "file.ready"),))] == 24
    assert worker[("frameio_kit_queue_depth", (("queue", "frameio-kit"),))] == 0
