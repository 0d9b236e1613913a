"""The dead-letter store against a real Redis, and the `frameio-kit dead-letters` command."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import redis

from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.jobs.dead_letters import Attempt, DeadLetterStore, dead_letter_id
from shared.redis_keys import attempts_key, dead_letter_index_key, dead_letter_key
from tests.helpers import ROOT, cli_command, webhook_payload


def _job(resource: str) -> WebhookJob:
    body = json.dumps(webhook_payload(resource)).encode()
    return WebhookJob.for_delivery("file.ready", resource, body, int(time.time()))


def _store(client: redis.Redis, max_entries: int = 100, retention: int = 3600) -> DeadLetterStore:
    return DeadLetterStore(client, max_entries=max_entries, retention=retention, completion_ttl=600)


def _fail(store: DeadLetterStore, job: WebhookJob, times: int) -> None:
    for n in range(1, times + 1):
        try:
            raise RuntimeError(f"boom {n}")
        except RuntimeError as exc:
            store.record_attempt(
                job.idempotency_key, Attempt.from_exception(exc, number=n, task_id=f"t{n}", started=time.perf_counter())
            )


def test_dead_letter_keeps_the_event_its_error_and_attempt_history(redis_client):
    store = _store(redis_client)
    job = _job("dl-1")
    _fail(store, job, 3)

    letter = store.dead_letter(job, "exhausted", "RuntimeError: boom 3")

    assert letter.id == dead_letter_id(job.idempotency_key)
    loaded = store.get(letter.id)
    assert loaded is not None and loaded.job == job
    assert [a.error for a in loaded.attempts] == [
        "RuntimeError: boom 1",
        "RuntimeError: boom 2",
        "RuntimeError: boom 3",
    ]
    assert "Traceback" in loaded.attempts[2].traceback
    assert not redis_client.exists(attempts_key(job.idempotency_key))
    assert 3500 < redis_client.ttl(dead_letter_key(letter.id)) <= 3600


def test_store_is_bounded_and_drops_the_oldest(redis_client):
    store = _store(redis_client, max_entries=3)
    letters = [store.dead_letter(_job(f"bounded-{i}"), "exhausted", "x") for i in range(5)]

    assert store.count() == 3
    assert {x.job.resource_id for x in store.recent()} == {"bounded-2", "bounded-3", "bounded-4"}
    assert not redis_client.exists(dead_letter_key(letters[0].id))
    assert not redis_client.exists(dead_letter_key(letters[1].id))


def test_entries_past_retention_are_dropped(redis_client):
    store = _store(redis_client, retention=60)
    old = store.dead_letter(_job("old-1"), "exhausted", "x")
    redis_client.zadd(dead_letter_index_key(), {old.id: time.time() - 120})

    store.dead_letter(_job("new-1"), "exhausted", "x")

    assert [x.job.resource_id for x in store.recent()] == ["new-1"]
    assert not redis_client.exists(dead_letter_key(old.id))


def test_lookup_by_unique_prefix_only(redis_client):
    store = _store(redis_client)
    letter = store.dead_letter(_job("prefix-1"), "permanent", "x")
    assert store.get(letter.id[:6]) == letter
    assert store.get("") is None
    assert store.get("not-an-id") is None


def test_replay_sends_the_job_then_removes_it(redis_client):
    store = _store(redis_client)
    job = _job("replay-1")
    _fail(store, job, 1)
    letter = store.dead_letter(job, "exhausted", "x")
    sent: list[WebhookJob] = []

    task_id = store.replay(letter, lambda j: sent.append(j) or "task-1")

    assert task_id == "task-1" and sent == [job]
    assert store.count() == 0 and store.get(letter.id) is None


def test_replay_that_cannot_send_keeps_the_dead_letter(redis_client):
    store = _store(redis_client)
    letter = store.dead_letter(_job("replay-fail"), "exhausted", "x")

    def broken(_: WebhookJob) -> str:
        raise ConnectionError("broker down")

    try:
        store.replay(letter, broken)
    except ConnectionError:
        pass
    assert store.get(letter.id) == letter


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("dead-letters", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_replay_all_queues_every_event_and_purge_empties_the_store(redis_client, base_env):
    store = _store(redis_client)
    jobs = [_job(f"cli-{i}") for i in range(3)]
    for job in jobs:
        store.dead_letter(job, "exhausted", "x")

    replayed = _run_cli(base_env, "replay", "--all")

    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 3 dead letter(s)" in replayed.stdout
    queued = [json.loads(m) for m in redis_client.lrange("frameio-kit", 0, -1)]
    assert len(queued) == 3
    assert {m["headers"]["task"] for m in queued} == {HANDLE_WEBHOOK}
    kwargs = [json.loads(base64.b64decode(m["body"]))[1] for m in queued]
    assert sorted(k["idempotency_key"] for k in kwargs) == sorted(j.idempotency_key for j in jobs)
    assert store.count() == 0

    store.dead_letter(_job("cli-purge"), "exhausted", "x")
    purged = _run_cli(base_env, "purge")
    assert purged.returncode == 0 and "purged 1 dead letter(s)" in purged.stdout
    assert store.count() == 0
    assert "0 dead letter(s)" in _run_cli(base_env, "list").stdout


def test_cli_show_unknown_id_fails_clearly(redis_client, base_env):
    result = _run_cli(base_env, "show", "nope")
    assert result.returncode == 1
    assert "no dead letter 'nope'" in result.stderr
