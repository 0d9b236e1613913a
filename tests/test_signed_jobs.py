"""Signed job envelopes over real HTTP, Redis, workers and Flower: a job no ingress signed never runs
and never reads a token, and is counted and listed; retried tasks show Celery events, Flower and
logs only a short description and scrubbed exception text."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography.fernet import Fernet

from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.signing import JobSigner
from shared.redis_keys import user_token_key
from tests.helpers import (
    ACTION_SECRET,
    ROOT,
    WEBHOOK_SECRET,
    Service,
    action_payload,
    cli_command,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)
from tests.leak_support import expand, redis_values
from tests.metrics_support import samples

pytestmark = pytest.mark.e2e

OAUTH_APP = "tests.apps.oauth:app"
JOBS_APP = "tests.apps.jobs:app"
FLOWER_AUTH = ("ops", "flower-test-pw")


@pytest.fixture
def start_service(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Service:
        svc = Service(name, argv, {**base_env, **(extra_env or {})}, tmp_path)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


def _flower(start_service: Callable[..., Service]) -> str:
    port = free_port()
    argv = ["celery", "-A", "workers", "flower", f"--port={port}", "--address=127.0.0.1"]
    svc = start_service("flower", argv, {"FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)})
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if svc.proc.poll() is not None:
            raise AssertionError(f"flower exited:\n{svc.output()[-3000:]}")
        try:
            return httpx.get(url + "/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, interval=0.2, what="flower")
    return url


class RedisMonitor:
    """Every command the Redis server runs while the test watches (MONITOR)."""

    def __init__(self, url: str) -> None:
        self.commands: list[str] = []
        self._client = redis.Redis.from_url(url)
        self._ready = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()
        self._ready.wait(5)

    def _watch(self) -> None:
        try:
            with self._client.monitor() as monitor:
                self._ready.set()
                for command in monitor.listen():
                    self.commands.append(str(command.get("command", "")))
        except (redis.RedisError, OSError, ValueError):
            return  # the server went away at the end of the session

    def touched(self, text: str) -> bool:
        return any(text in c for c in list(self.commands))


def _forged_job(resource: str, user: str) -> WebhookJob:
    body = json.dumps(webhook_payload(resource, user={"id": user})).encode()
    return WebhookJob.for_delivery("file.ready", resource, body, int(time.time()))


def test_jobs_no_ingress_signed_never_run_nor_read_a_token(
    start_ingress, start_worker, start_service, redis_client, redis_server, records, base_env
):
    oauth_env = {
        "FRAMEIO_KIT_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "FRAMEIO_KIT_IMS_URL": "http://0.0.0.0:9",
    }
    metrics_port = free_port()
    worker = start_worker(OAUTH_APP, extra_env={**oauth_env, "FRAMEIO_KIT_WORKER_METRICS_PORT": str(metrics_port)})
    flower = _flower(start_service)
    monitor = RedisMonitor(redis_server.url)

    # 1. Straight onto the queue, unsigned. 2. Signed, with a key no ingress has.
    unsigned = _forged_job("forged-unsigned", "victim-a")
    redis_client.lpush("frameio-kit", build_task_message(HANDLE_WEBHOOK, unsigned.model_dump(), "{}", "frameio-kit"))
    wrong = JobSigner([b"w" * 32])
    wrong_job = _forged_job("forged-wrong-key", "victim-b")
    message = build_task_message(HANDLE_WEBHOOK, wrong_job.model_dump(), "{}", "frameio-kit", wrong)
    redis_client.lpush("frameio-kit", message)
    # 3. Through Flower's task API, with made-up kwargs.
    via_flower = httpx.post(
        f"{flower}/api/task/async-apply/{HANDLE_WEBHOOK}",
        json={"kwargs": _forged_job("forged-flower", "victim-c").model_dump()},
        auth=FLOWER_AUTH,
        timeout=10,
    )
    assert via_flower.status_code == 200, via_flower.text

    store = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    wait_until(lambda: store.count() == 3, timeout=30, what="three refused jobs in the dead-letter store")
    letters = store.recent()
    assert {x.reason for x in letters} == {"unsigned"}
    assert all(x.job is None and x.task == HANDLE_WEBHOOK for x in letters)
    assert sorted(x.error for x in letters) == [
        "job signature invalid",
        "job signature missing",
        "job signature missing",
    ]
    assert records("webhook") == []
    assert not any(monitor.touched(user_token_key("acc-1", u)) for u in ("victim-a", "victim-b", "victim-c"))
    assert not any("forged-" in x.model_dump_json() for x in letters), "a refused job keeps its ids only"
    counted = samples(f"http://127.0.0.1:{metrics_port}/metrics")
    assert counted[("frameio_kit_worker_tasks_total", (("event_type", "-"), ("outcome", "refused")))] == 3
    assert worker.output().count("refused frameio_kit.handle_webhook") == 3
    assert "forged-" not in worker.output()

    listed = subprocess.run(
        cli_command("dead-letters", "list"),
        env=base_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.stdout.count("unsigned: job signature") == 3
    refused = subprocess.run(
        cli_command("dead-letters", "replay", letters[0].id),
        env=base_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "not replayed" in refused.stderr
    assert store.count() == 3

    # Jobs the ingress accepted run as before, and read the event user's token record.
    url = start_ingress(OAUTH_APP, extra_env=oauth_env)
    assert post_signed(url, webhook_payload("accepted-1", user={"id": "user-ok"}), WEBHOOK_SECRET).status_code == 202
    ran = wait_until(lambda: records("webhook"), timeout=20, what="the signed webhook to run")
    assert ran[0]["resource"] == "accepted-1"
    wait_until(
        lambda: monitor.touched(user_token_key("acc-1", "user-ok")), timeout=5, what="the worker to read the token"
    )


def test_retried_task_shows_no_answer_body_or_token_in_events_flower_logs_or_redis(
    start_ingress, start_worker, start_service, redis_client, redis_server, records
):
    flower = _flower(start_service)
    events = start_service("events", ["celery", "-A", "workers", "events", "--dump"])
    events.wait_for_output("evdump: starting capture", timeout=60)
    url = start_ingress(JOBS_APP)
    worker = start_worker(JOBS_APP)

    api_key = f"sk-live-{uuid.uuid4().hex}"
    body_marker = f"body-marker-{uuid.uuid4().hex}"
    interaction = str(uuid.uuid4())
    first = post_signed(url, action_payload(interaction, type="tests.secret_form"), ACTION_SECRET)
    assert first.json()["title"] == "Key"
    final = {
        "type": "tests.secret_form",
        "interaction_id": interaction,
        "action_id": "act-1",
        "data": {"api_key": api_key},
        "note": body_marker,
    }
    assert post_signed(url, final, ACTION_SECRET).json()["title"] == "Started"

    wait_until(lambda: [r["attempt"] for r in records("secret")] == [1, 2], timeout=30, what="a retry, then success")
    wait_until(lambda: "task retried" in events.output(), timeout=20, what="the task-retried event")
    wait_until(lambda: events.output().count("task succeeded") >= 1, timeout=20, what="the task-succeeded event")

    def flower_tasks() -> dict[str, Any]:
        tasks: dict[str, Any] = httpx.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
        return tasks if any(t.get("state") == "SUCCESS" for t in tasks.values()) else {}

    listed = json.dumps(wait_until(flower_tasks, timeout=20, what="flower to see the task succeed"))
    wait_until(lambda: redis_client.hlen("unacked") == 0, timeout=10, what="the messages to be acknowledged")

    dump = events.output()
    assert "HandlerFailed" in dump and "[redacted]" in dump, "the retry event carries the scrubbed error"
    assert "interaction_id" in listed, "flower shows the short description"
    redis_text = [text for key, value in redis_values(redis_server.url) for text in expand(value)]
    for secret in (api_key, body_marker):
        assert secret not in dump
        assert secret not in listed
        assert secret not in worker.output()
        assert not any(secret in text for text in redis_text)
    assert "Bearer" not in dump and "Bearer" not in worker.output()
