"""Handler time limits (docs/limits.md): a handler past its `timeout=` is cancelled, the attempt fails
with reason `timeout` and is retried by policy, then dead-lettered; it never runs twice at once; and a
limit not below FRAMEIO_KIT_VISIBILITY_TIMEOUT stops the worker at start-up (exit 2)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from frameio_kit import HandlerTimeout
from frameio_kit.testing import RedisServer, Service
from shared.jobs.dead_letters import DeadLetterStore
from shared.settings import Settings
from tests.helpers import ROOT, WEBHOOK_SECRET, cli_command, free_port, post_signed, wait_until, webhook_payload
from tests.metrics_support import samples
from workers.runtime import WorkerRuntime
from workers.timeouts import default_timeout

LIMITS_APP = "tests.apps.limits:app"


def _store(client: redis.Redis) -> DeadLetterStore:
    return DeadLetterStore(client, max_entries=100, retention=3600, completion_ttl=600)


@pytest.mark.e2e
def test_a_hanging_handler_is_cancelled_at_its_timeout_each_attempt_then_dead_lettered_as_timeout(
    start_ingress: Callable[..., str],
    start_worker: Callable[..., Service],
    redis_client: redis.Redis,
    redis_server: RedisServer,
    records: Callable[[str], list[dict[str, Any]]],
) -> None:
    url = start_ingress(LIMITS_APP)
    metrics_port = free_port()
    # Visibility timeout 6 s (conftest): the handler's 2 s limit is below it.
    worker = start_worker(LIMITS_APP, extra_env={"FRAMEIO_KIT_WORKER_METRICS_PORT": str(metrics_port)})
    assert post_signed(url, webhook_payload("hang-1", event_type="test.hang"), WEBHOOK_SECRET).status_code == 202

    store = _store(redis_client)
    letters = wait_until(store.recent, timeout=40, what="the hanging handler's dead letter")
    letter = letters[0]
    assert letter.reason == "timeout"
    assert letter.job is not None and letter.job.resource_id == "hang-1"
    assert [a.number for a in letter.attempts] == [1, 2]  # max_retries=1: one retry, then given up
    for attempt in letter.attempts:
        assert attempt.error.startswith("HandlerTimeout:"), attempt.error
        assert 1900 <= attempt.duration_ms <= 3500, attempt.duration_ms  # cancelled at about 2 s
    assert len(records("hang")) == 2
    record = redis.Redis.from_url(redis_server.db_url(1))
    assert record.get("test:hang:max") == b"1"  # never two runs at once
    assert record.get("test:hang:running") == b"0"  # the cancelled handler's `finally` ran
    assert worker.output().count("timed out test.hang resource=hang-1") == 2
    counters = samples(f"http://127.0.0.1:{metrics_port}/metrics")
    assert counters[("frameio_kit_worker_handler_timeouts_total", (("event_type", "test.hang"),))] == 2


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FRAMEIO_KIT_VISIBILITY_TIMEOUT": "2"}, ["timeout=2", "FRAMEIO_KIT_VISIBILITY_TIMEOUT=2", "limits.hang"]),
        (
            {"FRAMEIO_KIT_HANDLER_TIMEOUT": "6"},
            ["FRAMEIO_KIT_HANDLER_TIMEOUT=6", "FRAMEIO_KIT_VISIBILITY_TIMEOUT=6"],
        ),
    ],
    ids=["a handler's timeout", "the default"],
)
def test_a_limit_not_below_the_visibility_timeout_stops_the_worker_at_start_up(
    base_env: dict[str, str], env: dict[str, str], named: list[str]
) -> None:
    result = subprocess.run(
        cli_command("worker", LIMITS_APP),
        env={**base_env, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    for text in named:
        assert text in result.stderr, result.stderr


def test_the_default_limit_follows_a_lower_visibility_timeout_unless_set() -> None:
    assert default_timeout(Settings(visibility_timeout=900)) == 600
    assert default_timeout(Settings(visibility_timeout=6)) == pytest.approx(5.4)
    assert default_timeout(Settings(visibility_timeout=6, handler_timeout=3)) == 3


def test_the_runtime_cancels_a_coroutine_past_its_limit_and_leaves_others_alone() -> None:
    runtime = WorkerRuntime()
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def quick() -> str:
        await asyncio.sleep(0.05)
        return "done"

    try:
        started = time.monotonic()
        with pytest.raises(HandlerTimeout, match=r"0\.3 s"):
            runtime.run(forever(), timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 1.5
        assert cancelled == [True]
        assert runtime.run(quick(), timeout=5) == "done"
        assert runtime.run(quick()) == "done"
    finally:
        runtime.stop_loop()
