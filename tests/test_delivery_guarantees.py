"""End to end: duplicate deliveries, retries, dead letters and replay, with real processes."""

from __future__ import annotations

import hashlib
import json
import subprocess

import httpx
import pytest
import redis

from shared.jobs.contract import idempotency_key
from shared.jobs.dead_letters import DeadLetterStore
from shared.redis_keys import attempts_key, done_key
from tests.helpers import ROOT, WEBHOOK_SECRET, cli_command, sign_request, wait_until, webhook_payload

pytestmark = pytest.mark.e2e

RELIABILITY_APP = "tests.apps.reliability:app"


def _store(client: redis.Redis) -> DeadLetterStore:
    return DeadLetterStore(client, max_entries=100, retention=3600, completion_ttl=600)


def _post_raw(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + "/", content=body, headers=headers, timeout=10)


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("dead-letters", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _done_for(records, resource: str) -> list[dict]:
    return [d for d in records("done") if d["resource"] == resource]


def test_same_signed_delivery_five_times_runs_the_handler_once(start_ingress, start_worker, redis_client, records):
    url = start_ingress(RELIABILITY_APP)
    start_worker(RELIABILITY_APP, concurrency=1)
    body, headers = sign_request(webhook_payload("dup-1"), WEBHOOK_SECRET)

    statuses = [_post_raw(url, body, headers).status_code for _ in range(5)]

    assert statuses == [202] * 5
    # A later event on the same single-slot worker finishes only after anything queued before it.
    assert _post_raw(url, *sign_request(webhook_payload("sentinel-1"), WEBHOOK_SECRET)).status_code == 202
    wait_until(lambda: _done_for(records, "sentinel-1"), timeout=20, what="the sentinel event")
    done = _done_for(records, "dup-1")
    assert len(done) == 1
    assert len([s for s in records("started") if s["resource"] == "dup-1"]) == 1
    assert done[0]["key"] == idempotency_key("file.ready", body)
    assert done[0]["key"] == hashlib.sha256(b"file.ready\n" + body).hexdigest()


def test_redelivered_event_whose_handler_completed_is_not_run_again(start_ingress, start_worker, redis_client, records):
    # With de-duplication off at the ingress, both copies reach the queue: the worker's
    # completion marker is what stops the second run (as for a redelivery after a crash).
    url = start_ingress(RELIABILITY_APP, extra_env={"FRAMEIO_KIT_DEDUP_WINDOW": "0"})
    worker = start_worker(RELIABILITY_APP, concurrency=1)
    body, headers = sign_request(webhook_payload("redelivered-1"), WEBHOOK_SECRET)
    assert _post_raw(url, body, headers).status_code == 202
    wait_until(lambda: _done_for(records, "redelivered-1"), timeout=20, what="the first run")
    # The handler records before it returns; the marker is written just after.
    key = done_key(idempotency_key("file.ready", body))
    wait_until(lambda: redis_client.exists(key), timeout=5, what="the completion marker")

    assert _post_raw(url, body, headers).status_code == 202
    worker.wait_for_output(r"skipped file\.ready resource=redelivered-1 .*already completed", timeout=20)
    assert len(_done_for(records, "redelivered-1")) == 1
    assert len([s for s in records("started") if s["resource"] == "redelivered-1"]) == 1


def test_handler_failing_twice_completes_on_the_third_attempt(start_ingress, start_worker, redis_client, records):
    url = start_ingress(RELIABILITY_APP)
    worker = start_worker(RELIABILITY_APP)
    body, headers = sign_request(webhook_payload("flaky-3", test_fail_times=2), WEBHOOK_SECRET)
    assert _post_raw(url, body, headers).status_code == 202

    wait_until(lambda: _done_for(records, "flaky-3"), timeout=30, what="the third attempt to succeed")
    assert len([s for s in records("started") if s["resource"] == "flaky-3"]) == 3
    worker.wait_for_output(r"done file\.ready resource=flaky-3 task=\S+ attempt=3", timeout=10)
    assert _store(redis_client).count() == 0
    assert not redis_client.exists(attempts_key(idempotency_key("file.ready", body)))


def test_always_failing_handler_is_dead_lettered_with_three_errors_and_replay_reruns_it(
    start_ingress, start_worker, redis_client, records, base_env
):
    url = start_ingress(RELIABILITY_APP)
    worker = start_worker(RELIABILITY_APP)
    # Fails on each of its 3 attempts (FRAMEIO_KIT_MAX_RETRIES defaults to 2); a 4th run succeeds.
    body, headers = sign_request(webhook_payload("doomed-1", test_fail_times=3), WEBHOOK_SECRET)
    assert _post_raw(url, body, headers).status_code == 202

    store = _store(redis_client)
    wait_until(lambda: store.count() == 1, timeout=30, what="the event to be dead-lettered")
    [letter] = store.recent()
    assert letter.reason == "exhausted"
    assert [a.error for a in letter.attempts] == [f"RuntimeError: planned failure {n}" for n in (1, 2, 3)]
    assert [a.number for a in letter.attempts] == [1, 2, 3]
    assert "Traceback" in letter.attempts[0].traceback
    assert letter.job.idempotency_key == idempotency_key("file.ready", body)
    worker.wait_for_output(r"dead-lettered file\.ready resource=doomed-1 .*attempts=3", timeout=10)
    assert _done_for(records, "doomed-1") == []

    listed = _run_cli(base_env, "list")
    assert listed.returncode == 0, listed.stderr
    assert letter.id in listed.stdout and "doomed-1" in listed.stdout and "1 dead letter(s)" in listed.stdout
    shown = _run_cli(base_env, "show", letter.id[:8])
    assert shown.returncode == 0, shown.stderr
    assert [a["error"] for a in json.loads(shown.stdout)["attempts"]][-1] == "RuntimeError: planned failure 3"

    replayed = _run_cli(base_env, "replay", letter.id)
    assert replayed.returncode == 0, replayed.stderr
    done = wait_until(lambda: _done_for(records, "doomed-1"), timeout=30, what="the replayed event to complete")
    assert done[0]["key"] == letter.job.idempotency_key
    assert store.count() == 0
    assert len([s for s in records("started") if s["resource"] == "doomed-1"]) == 4


def test_permanent_error_is_dead_lettered_without_retry(start_ingress, start_worker, redis_client, records):
    url = start_ingress(RELIABILITY_APP)
    start_worker(RELIABILITY_APP)
    assert (
        _post_raw(url, *sign_request(webhook_payload("perm-1", test_permanent=True), WEBHOOK_SECRET)).status_code == 202
    )

    store = _store(redis_client)
    wait_until(lambda: store.count() == 1, timeout=30, what="the event to be dead-lettered")
    [letter] = store.recent()
    assert letter.reason == "permanent"
    assert [a.error for a in letter.attempts] == ["PermanentError: planned permanent failure"]
    assert len([s for s in records("started") if s["resource"] == "perm-1"]) == 1


def test_per_handler_retry_overrides_apply(start_ingress, start_worker, redis_client, records):
    url = start_ingress(RELIABILITY_APP)
    start_worker(RELIABILITY_APP)
    # comment.created: max_retries=0, so one failure dead-letters it.
    no_retry = webhook_payload("override-0", event_type="comment.created", test_fail_times=1)
    # file.upload.completed: max_retries=4, so four failures still end in success on attempt 5.
    more_retries = webhook_payload("override-4", event_type="file.upload.completed", test_fail_times=4)
    assert _post_raw(url, *sign_request(no_retry, WEBHOOK_SECRET)).status_code == 202
    assert _post_raw(url, *sign_request(more_retries, WEBHOOK_SECRET)).status_code == 202

    store = _store(redis_client)
    wait_until(lambda: _done_for(records, "override-4"), timeout=30, what="attempt 5 of the upload handler")
    wait_until(lambda: store.count() == 1, timeout=30, what="the comment event to be dead-lettered")
    assert len([s for s in records("started") if s["resource"] == "override-4"]) == 5
    [letter] = store.recent()
    assert letter.job.resource_id == "override-0" and len(letter.attempts) == 1
