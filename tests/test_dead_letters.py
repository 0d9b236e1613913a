"""The dead-letter store against a real Redis, and the `frameio-kit dead-letters` command: a replay re-sends
the stored signed job unchanged, and only when it verifies and has not expired."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from typing import Any

import pytest
import redis

from shared.errors import ReplayRefused
from shared.jobs.contract import HANDLE_WEBHOOK, AnyJob, WebhookJob
from shared.jobs.dead_letters import Attempt, DeadLetterStore, dead_letter_id
from shared.jobs.signing import SIGNATURE_FIELD, JobSigner
from shared.redis_keys import attempts_key, dead_letter_index_key, dead_letter_key
from tests.helpers import JOB_SIGNING_KEY, ROOT, cli_command, queued, webhook_payload

SIGNER = JobSigner([JOB_SIGNING_KEY.encode()])


def _job(resource: str) -> WebhookJob:
    body = json.dumps(webhook_payload(resource)).encode()
    return WebhookJob.for_delivery("file.ready", resource, body, int(time.time()))


def _signed(job: WebhookJob, signer: JobSigner = SIGNER, issued: int | None = None) -> dict[str, Any]:
    """The kwargs a worker receives for `job` (what it keeps in the dead letter)."""
    return signer.sign(job.task_name, job.model_dump(), issued)


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


def test_dead_letter_stores_the_signed_job_once_and_reads_the_job_from_it(redis_client):
    store = _store(redis_client)
    job = _job("stored-once")
    signed = _signed(job)

    letter = store.dead_letter(job, "exhausted", "x", signed=signed)

    raw = redis_client.get(dead_letter_key(letter.id)).decode()
    assert raw.count('"body"') == 1 and '"job":' not in raw
    loaded = store.get(letter.id)
    assert loaded == letter and loaded.signed == signed and loaded.job == job


def test_replay_sends_the_signed_job_unchanged_then_removes_it(redis_client):
    store = _store(redis_client)
    job = _job("replay-1")
    _fail(store, job, 1)
    signed = _signed(job, issued=int(time.time()) - 3600)
    letter = store.dead_letter(job, "exhausted", "x", signed=signed)
    sent: list[tuple[str, dict[str, Any], AnyJob]] = []

    task_id = store.replay(letter, SIGNER, lambda *a: sent.append(a) or "task-1")

    assert task_id == "task-1" and sent == [(HANDLE_WEBHOOK, signed, job)]
    assert store.count() == 0 and store.get(letter.id) is None


def test_replay_that_cannot_send_keeps_the_dead_letter(redis_client):
    store = _store(redis_client)
    job = _job("replay-fail")
    letter = store.dead_letter(job, "exhausted", "x", signed=_signed(job))

    def broken(*_: Any) -> str:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        store.replay(letter, SIGNER, broken)
    assert store.get(letter.id) == letter


def _refusal(store: DeadLetterStore, letter_id: str, signer: JobSigner = SIGNER) -> str:
    letter = store.get(letter_id)
    assert letter is not None
    with pytest.raises(ReplayRefused) as refused:
        store.replay(letter, signer, lambda *_: pytest.fail("a refused dead letter was sent"))
    assert store.get(letter_id) == letter, "a refused dead letter stays in the store"
    return str(refused.value)


def test_replay_refuses_a_letter_without_a_signed_job(redis_client):
    store = _store(redis_client)
    letter = store.dead_letter(_job("old-format"), "exhausted", "x")

    assert "holds no signed job" in _refusal(store, letter.id)


def test_replay_refuses_a_signed_job_whose_content_was_changed(redis_client):
    store = _store(redis_client)
    job = _job("tampered")
    signed = {**_signed(job), "resource_id": "someone-else"}
    letter = store.dead_letter(job, "exhausted", "x", signed=signed)

    assert "does not verify" in _refusal(store, letter.id)


def test_replay_refuses_an_expired_signed_job_unless_the_max_age_is_raised(redis_client):
    store = _store(redis_client)
    job = _job("expired")
    signed = _signed(job, issued=int(time.time()) - 7200)
    letter = store.dead_letter(job, "exhausted", "x", signed=signed)
    short = JobSigner([JOB_SIGNING_KEY.encode()], max_age=3600)

    assert "older than FRAMEIO_KIT_JOB_MAX_AGE (3600 s)" in _refusal(store, letter.id, short)
    longer = JobSigner([JOB_SIGNING_KEY.encode()], max_age=10_800)
    sent: list[Any] = []
    store.replay(letter, longer, lambda *a: sent.append(a) or "t")
    assert sent[0][1] == signed


def test_job_signed_with_a_retired_key_replays_once_the_key_is_back_in_the_verify_list(redis_client):
    store = _store(redis_client)
    retired = b"r" * 32
    job = _job("retired-key")
    signed = _signed(job, JobSigner([retired]))
    letter = store.dead_letter(job, "exhausted", "x", signed=signed)

    assert "retired key" in _refusal(store, letter.id)
    sent: list[Any] = []
    store.replay(letter, JobSigner([JOB_SIGNING_KEY.encode(), retired]), lambda *a: sent.append(a) or "t")
    assert sent[0][1] == signed, "re-sent as signed, never signed anew with the current key"


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("dead-letters", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_replay_all_queues_every_signed_job_unchanged_and_purge_empties_the_store(redis_client, base_env):
    store = _store(redis_client)
    jobs = [_job(f"cli-{i}") for i in range(3)]
    signed = [_signed(job, issued=int(time.time()) - 60) for job in jobs]
    for job, envelope in zip(jobs, signed, strict=True):
        store.dead_letter(job, "exhausted", "x", signed=envelope)

    replayed = _run_cli(base_env, "replay", "--all")

    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 3 dead letter(s)" in replayed.stdout
    messages = [json.loads(m) for m in queued(redis_client)]
    assert len(messages) == 3
    assert {m["headers"]["task"] for m in messages} == {HANDLE_WEBHOOK}
    kwargs = [json.loads(base64.b64decode(m["body"]))[1] for m in messages]
    assert sorted(kwargs, key=lambda k: k["resource_id"]) == signed
    assert store.count() == 0

    store.dead_letter(_job("cli-purge"), "exhausted", "x")
    purged = _run_cli(base_env, "purge", "--yes")
    assert purged.returncode == 0 and "purged 1 dead letter(s)" in purged.stdout
    assert store.count() == 0
    assert "0 dead letter(s)" in _run_cli(base_env, "list").stdout


def test_cli_show_prints_the_job_and_its_issued_at_but_not_the_signature(redis_client, base_env):
    store = _store(redis_client)
    job = _job("shown")
    signed = _signed(job, issued=1_700_000_000)
    letter = store.dead_letter(job, "exhausted", "x", signed=signed)
    store.dead_letter(_job("shown-old"), "exhausted", "x")

    shown = _run_cli(base_env, "show", letter.id)

    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["job"]["resource_id"] == "shown"
    assert data["signed_job"] == {"stored": True, "issued_at": 1_700_000_000}
    assert signed[SIGNATURE_FIELD] not in shown.stdout
    old = json.loads(_run_cli(base_env, "show", dead_letter_id(_job("shown-old").idempotency_key)).stdout)
    assert old["signed_job"] == {"stored": False, "issued_at": None}


def test_cli_show_unknown_id_fails_clearly(redis_client, base_env):
    result = _run_cli(base_env, "show", "nope")
    assert result.returncode == 1
    assert "no dead letter 'nope'" in result.stderr
