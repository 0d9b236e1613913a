"""SIGTERM, as an orchestrator sends it: workers finish or requeue running handlers, the ingress finishes requests."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import TEST_APP
from tests.helpers import ACTION_SECRET, WEBHOOK_SECRET, action_payload, post_signed, wait_until, webhook_payload

pytestmark = pytest.mark.e2e

# Long enough that only an explicit requeue, never kombu's visibility-timeout restore, can explain a quick redelivery.
_SLOW_RESTORE = {"FRAMEIO_KIT_VISIBILITY_TIMEOUT": "300"}


def test_sigterm_lets_a_running_handler_finish(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    worker = start_worker(extra_env=_SLOW_RESTORE)
    assert post_signed(url, webhook_payload("term-1", test_sleep=5), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: records("started"), timeout=10, what="the handler to start")

    worker.signal(signal.SIGTERM)
    done = wait_until(lambda: records("done"), timeout=20, what="the running handler to finish")
    assert worker.proc.wait(timeout=15) == 0
    assert [(d["resource"], d["pid"]) for d in done] == [("term-1", worker.pid)]
    assert len(records("started")) == 1
    assert "waiting up to 30s" in worker.output()


def test_handler_outliving_the_grace_period_is_requeued_not_lost(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    first = start_worker(extra_env={**_SLOW_RESTORE, "FRAMEIO_KIT_SHUTDOWN_GRACE": "1"})
    assert post_signed(url, webhook_payload("term-2", test_sleep=5), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: records("started"), timeout=10, what="the handler to start")

    signalled = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.proc.wait(timeout=10) == 1
    assert time.monotonic() - signalled < 5
    assert records("done") == []
    assert "requeued 1 unfinished tasks" in first.output()

    second = start_worker(extra_env=_SLOW_RESTORE)
    done = wait_until(lambda: records("done"), timeout=30, what="the requeued event on the second worker")
    assert [(d["resource"], d["pid"]) for d in done] == [("term-2", second.pid)]
    assert time.monotonic() - signalled < 60  # far below the 300 s visibility timeout


def test_ingress_finishes_requests_in_flight_on_sigterm(start_ingress, redis_client, records):
    url = start_ingress(app=TEST_APP.replace("basic", "slow_action"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post_signed, url, action_payload("slow-step"), ACTION_SECRET)
        wait_until(lambda: records("action"), timeout=10, what="the slow action to start")
        ingress_pid = records("action")[0]["pid"]
        os.kill(ingress_pid, signal.SIGTERM)
        response = pending.result(timeout=15)
    assert response.status_code == 200
    assert response.json()["title"] == "Slow but done"
