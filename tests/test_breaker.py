"""Pausing a failing handler, over real ingress, workers, Redis, Flower and the CLI: after
FRAMEIO_KIT_BREAKER_FAILURES consecutive failures the handler is paused and its later jobs are held (dead
letters stop at the threshold); probes keep failing without dead letters while the dependency is down;
once it is back, a probe resumes the handler and every held job runs. `handlers pause` / `resume` by hand
do the same; /metrics and Flower show the pause."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.events.history import EventHistory
from shared.events.pauses import HandlerPauses
from shared.jobs.dead_letters import DeadLetterStore
from tests.helpers import (
    ROOT,
    WEBHOOK_SECRET,
    Service,
    cli_command,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e

BREAKER_APP = "tests.apps.breaker:app"
FLOWER_AUTH = ("ops", "flower-test-pw")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )


def _records(redis_server) -> Callable[[str], list[str]]:  # type: ignore[no-untyped-def]
    import json

    client = redis.Redis.from_url(redis_server.db_url(1))
    return lambda kind: [json.loads(x)["resource"] for x in client.lrange(f"test:{kind}", 0, -1)]


def _pauses(client: redis.Redis) -> HandlerPauses:
    return HandlerPauses(client, broker_is_redis=True, ledger_stale_after=12)


def _statuses(client: redis.Redis) -> dict[str, str]:
    return {r.resource_id: r.status for r in EventHistory(client, max_events=100, retention=3600).newest()}


def _gauge(text: str, handler: str) -> float | None:
    found = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "frameio_kit_handler_paused" and s.labels.get("handler") == handler
    ]
    return found[0].value if found else None


def test_consecutive_failures_pause_the_handler_and_a_probe_resumes_it(
    start_ingress, start_worker, redis_client, redis_server, base_env
):
    metrics_port = free_port()
    env = {
        "FRAMEIO_KIT_BREAKER_FAILURES": "5",
        "FRAMEIO_KIT_BREAKER_PROBE": "1",
        "FRAMEIO_KIT_WORKER_METRICS_PORT": str(metrics_port),
    }
    url = start_ingress(BREAKER_APP)
    start_worker(BREAKER_APP, extra_env=env, concurrency=4)
    records = _records(redis_server)
    side = redis.Redis.from_url(redis_server.db_url(1))
    side.set("test:down", "1")
    letters = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    pauses = _pauses(redis_client)

    resources = [f"b{i}" for i in range(12)]
    for resource in resources:
        assert post_signed(url, webhook_payload(resource), WEBHOOK_SECRET).status_code == 202
    assert post_signed(url, webhook_payload("c1", event_type="comment.created"), WEBHOOK_SECRET).status_code == 202

    wait_until(
        lambda: letters.count() == 5 and sum(pauses.held_counts(["file.ready"]).values()) >= 6,
        timeout=30,
        what="five dead letters, then the rest held",
    )
    assert pauses.paused()["file.ready"].by == "breaker"
    wait_until(lambda: records("comment") == ["c1"], timeout=20, what="another handler to run: it is not paused")
    runs = len(records("run"))
    # Probes run while the dependency is still down: they fail, are held again, and dead-letter nothing.
    wait_until(lambda: len(records("run")) >= runs + 2, timeout=30, what="two failed probes")
    assert letters.count() == 5 and "file.ready" in pauses.paused()
    assert records("done") == []
    held_statuses = [s for r, s in _statuses(redis_client).items() if r.startswith("b") and s not in ("dead",)]
    assert held_statuses.count("paused") >= 6

    listed = _cli(base_env, "handlers", "list", BREAKER_APP)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("file.ready  [webhook]"))
    assert "paused by the breaker after 5 consecutive failures" in line and "held=" in line
    assert "comment.created  [webhook]  running" in listed.stdout
    worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert _gauge(worker_metrics, "file.ready") == 1.0 and _gauge(worker_metrics, "comment.created") == 0.0
    assert _gauge(httpx.get(url + "/metrics", timeout=5).text, "file.ready") == 1.0

    side.delete("test:down")  # the dependency recovers: the next probe succeeds
    wait_until(lambda: len(set(records("done"))) == 7, timeout=60, what="the probe, then every held event")
    assert sorted(set(records("done"))) == sorted(set(resources) - {x.job.resource_id for x in letters.recent()})
    assert letters.count() == 5  # 0 new dead letters
    assert pauses.paused() == {} and pauses.held_counts(["file.ready"]) == {"file.ready": 0}
    statuses = _statuses(redis_client)
    assert sorted(statuses[r] for r in resources) == ["dead"] * 5 + ["done"] * 7
    gauge = wait_until(
        lambda: _gauge(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text, "file.ready") == 0.0,
        timeout=10,
    )
    assert gauge


@pytest.fixture
def start_flower(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], str]]:
    started: list[Service] = []

    def start() -> str:
        port = free_port()
        argv = ["celery", "-A", "workers", "flower", f"--port={port}", "--address=127.0.0.1"]
        svc = Service("flower", argv, {**base_env, "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)}, tmp_path)
        started.append(svc)
        flower = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(flower + "/healthcheck", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, interval=0.2, what="flower")
        return flower

    yield start
    for svc in started:
        svc.stop()


def test_pause_and_resume_by_hand_hold_then_run_every_job_and_flower_shows_paused_tasks(
    start_ingress, start_worker, start_flower, redis_client, redis_server, base_env
):
    url = start_ingress(BREAKER_APP)
    start_worker(BREAKER_APP)  # no breaker (FRAMEIO_KIT_BREAKER_FAILURES=0): a pause by hand, no probe
    flower = start_flower()
    records = _records(redis_server)
    letters = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)

    paused = _cli(base_env, "handlers", "pause", "file.ready")
    assert paused.returncode == 0, paused.stderr
    assert "paused file.ready: its jobs are held until `frameio-kit handlers resume file.ready`" in paused.stdout

    canaries: list[str] = []

    def a_canary_is_held() -> bool:  # each worker reads the paused handlers at most once a second
        canaries.append(f"canary-{uuid.uuid4().hex[:8]}")
        assert post_signed(url, webhook_payload(canaries[-1]), WEBHOOK_SECRET).status_code == 202
        return "paused" in _statuses(redis_client).values()

    wait_until(a_canary_is_held, timeout=20, interval=0.3, what="the worker to hold the paused handler's jobs")
    held = [f"h{i}" for i in range(5)]
    for resource in held:
        assert post_signed(url, webhook_payload(resource), WEBHOOK_SECRET).status_code == 202
    wait_until(
        lambda: all(_statuses(redis_client).get(r) == "paused" for r in held), timeout=20, what="the jobs to be held"
    )
    assert not set(held) & set(records("run")) and letters.count() == 0

    def flower_paused() -> list[str]:
        tasks = httpx.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
        return [t for t, info in tasks.items() if info.get("state") == "PAUSED"]

    assert len(wait_until(lambda: len(flower_paused()) >= 5 and flower_paused(), timeout=20, what="flower")) >= 5

    listed = _cli(base_env, "handlers", "list")
    assert "file.ready  [-]  paused by an operator" in listed.stdout
    on_hold = [r for r, status in _statuses(redis_client).items() if status == "paused"]
    assert set(held) <= set(on_hold) and len(on_hold) == _pauses(redis_client).held_counts(["file.ready"])["file.ready"]
    resumed = _cli(base_env, "handlers", "resume", "file.ready")
    assert resumed.returncode == 0, resumed.stderr
    assert f"file.ready resumed: {len(on_hold)} held job(s) queued again" in resumed.stdout
    wait_until(lambda: set(held) <= set(records("done")), timeout=30, what="every held job to run")
    wait_until(
        lambda: all(s == "done" for s in _statuses(redis_client).values()), timeout=30, what="all done in the history"
    )
    assert letters.count() == 0 and sorted(records("done")) == sorted(set(records("done")))  # each ran once

    unknown = _cli(base_env, "handlers", "pause", "file.nope", "--app", BREAKER_APP)
    assert unknown.returncode == 1 and "the app has no handler 'file.nope'" in unknown.stderr


def test_pause_resume_and_the_history_over_rabbitmq(start_ingress, start_worker, redis_client, redis_server, base_env):
    """RabbitMQ as the broker: the ingress records events before publishing, held jobs go back through
    Celery's producer on resume, and the history (in REDIS_URL) ends with every event done."""
    from tests.test_rabbitmq import RABBITMQ_URL, _rabbitmq_reachable

    if not _rabbitmq_reachable():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    from kombu import Connection

    queue = f"frameio-kit-test-{uuid.uuid4().hex[:10]}"
    env = {"FRAMEIO_KIT_BROKER_URL": RABBITMQ_URL, "FRAMEIO_KIT_QUEUE": queue, "FRAMEIO_KIT_FAIRNESS": "off"}
    try:
        url = start_ingress(BREAKER_APP, extra_env=env)
        start_worker(BREAKER_APP, extra_env=env)
        records = _records(redis_server)
        cli_env = {**base_env, **env}
        assert _cli(cli_env, "handlers", "pause", "file.ready").returncode == 0

        def a_canary_is_held() -> bool:
            assert post_signed(url, webhook_payload(f"canary-{uuid.uuid4().hex[:8]}"), WEBHOOK_SECRET).status_code
            return "paused" in _statuses(redis_client).values()

        wait_until(a_canary_is_held, timeout=20, interval=0.3, what="the worker to hold the paused handler's jobs")
        held = [f"rq{i}" for i in range(3)]
        for resource in held:
            assert post_signed(url, webhook_payload(resource), WEBHOOK_SECRET).status_code == 202
        wait_until(lambda: all(_statuses(redis_client).get(r) == "paused" for r in held), timeout=20)
        assert not set(held) & set(records("run"))

        resumed = _cli(cli_env, "handlers", "resume", "file.ready")
        assert resumed.returncode == 0 and "file.ready resumed:" in resumed.stdout, resumed.stderr
        wait_until(lambda: set(held) <= set(records("done")), timeout=30, what="the held jobs to run")
        wait_until(lambda: set(_statuses(redis_client).values()) == {"done"}, timeout=30, what="the history")
    finally:
        with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
            conn.default_channel.queue_delete(queue)


def test_held_jobs_leave_the_ledger_and_come_back_with_it_once_and_a_probe_never_lifts_an_operators_pause(
    redis_client,
):
    from shared.events.pauses import HeldJob, PauseInfo
    from shared.jobs.kombu_redis import task_of
    from shared.redis_keys import held_jobs_key, ledger_due_key, ledger_key

    pauses = _pauses(redis_client)
    job = HeldJob(task="frameio_kit.handle_webhook", queue="q1", key="k1", signed={"x": 1})
    redis_client.hset(ledger_key(), "k1", b"the queued message")
    redis_client.zadd(ledger_due_key(), {"k1": 1})
    assert pauses.hold("file.ready", job, None) == -1  # not paused: nothing held, the worker runs it
    assert redis_client.hexists(ledger_key(), "k1")

    pauses.pause("file.ready", PauseInfo(by="breaker", at=1.0, failures=5))
    assert pauses.hold("file.ready", job, None) == 1
    assert not redis_client.hexists(ledger_key(), "k1") and redis_client.zscore(ledger_due_key(), "k1") is None

    assert pauses.resume("file.ready", only_breaker=True)
    bad = b'{"not": "a held job"}'
    redis_client.rpush(held_jobs_key("file.ready"), bad)  # written by hand: dropped, not queued
    assert pauses.requeue("file.ready") == 0
    assert redis_client.llen("q1") == 0 and redis_client.llen(held_jobs_key("file.ready")) == 0

    good = {
        "event_type": "file.ready",
        "resource_id": "r1",
        "body": "{}",
        "timestamp": 1,
        "received_at": 1.0,
        "idempotency_key": "k2",
    }
    pauses.pause("file.ready", PauseInfo(by="operator", at=2.0))
    assert pauses.hold("file.ready", HeldJob(task=job.task, queue="q1", key="k2", signed=good), None) == 1
    assert not pauses.resume("file.ready", only_breaker=True)  # a probe never lifts an operator's pause
    assert "file.ready" in pauses.paused()
    assert pauses.resume("file.ready") and pauses.requeue("file.ready") == 1 and pauses.requeue("file.ready") == 0
    (message,) = redis_client.lrange("q1", 0, -1)
    assert task_of(message) == ("frameio_kit.handle_webhook", good)  # as held: nothing re-signed
    assert redis_client.hget(ledger_key(), "k2") == message and redis_client.zscore(ledger_due_key(), "k2")
