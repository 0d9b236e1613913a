"""Issue 21, points 1 and 13, as attacks over the real CLI, Redis and workers: `dead-letters replay` re-sends
only signed jobs that verify (a dead letter written straight into Redis is refused and reported, never run),
and a validly signed job older than FRAMEIO_KIT_JOB_MAX_AGE is refused by the workers."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
import redis

from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.kombu_redis import build_task_message
from shared.jobs.signing import JobSigner
from shared.redis_keys import dead_letter_index_key, dead_letter_key, ledger_due_key, ledger_key
from shared.settings import DEFAULT_JOB_MAX_AGE, Settings
from tests.helpers import (
    JOB_SIGNING_KEY,
    ROOT,
    WEBHOOK_SECRET,
    cli_command,
    post_signed,
    queue_length,
    wait_until,
    webhook_payload,
)

RELIABILITY_APP = "tests.apps.reliability:app"
QUEUE = "frameio-kit"
SIGNER = JobSigner([JOB_SIGNING_KEY.encode()])


def _store(client: redis.Redis) -> DeadLetterStore:
    return DeadLetterStore(client, max_entries=100, retention=3600, completion_ttl=600)


def _victim_job(resource: str) -> WebhookJob:
    """Another tenant's event, for a victim user: what an attacker with Redis access wants run."""
    payload = webhook_payload(resource, user={"id": "victim-user"})
    payload["account"] = {"id": "acc-victim"}
    return WebhookJob.for_delivery("file.ready", resource, json.dumps(payload).encode(), int(time.time()))


def _write_letter(client: redis.Redis, letter_id: str, **fields: Any) -> None:
    """A dead letter as an attacker writes it: straight into Redis, no worker involved."""
    letter = {
        "id": letter_id,
        "task": HANDLE_WEBHOOK,
        "task_id": "",
        "reason": "exhausted",
        "error": "RuntimeError: try again",
        "dead_lettered_at": time.time(),
        "attempts": [],
        **fields,
    }
    client.set(dead_letter_key(letter_id), json.dumps(letter))
    client.zadd(dead_letter_index_key(), {letter_id: time.time()})


def _started(records: Any, resource: str) -> list[dict[str, Any]]:
    return [s for s in records("started") if s["resource"] == resource]


@pytest.mark.e2e
def test_replay_all_refuses_made_up_dead_letters_and_replays_a_genuine_one_once(
    start_ingress, start_worker, redis_client, records, base_env
):
    url = start_ingress(RELIABILITY_APP)
    worker = start_worker(RELIABILITY_APP)
    # Fails its three attempts (FRAMEIO_KIT_MAX_RETRIES=2) and is dead-lettered by the worker; a fourth run succeeds.
    assert post_signed(url, webhook_payload("genuine-1", test_fail_times=3), WEBHOOK_SECRET).status_code == 202
    store = _store(redis_client)
    wait_until(lambda: store.count() == 1, timeout=30, what="the genuine event to be dead-lettered")
    [genuine] = store.recent()
    assert genuine.signed is not None, "the worker keeps the signed job it received"

    # 1. The pre-fix layout: a job, no signature (the old replay signed it with the victim's ids).
    _write_letter(redis_client, "forged0000000001", job=_victim_job("forged-unsigned").model_dump())
    # 2. A signed job, signed with a key no ingress has.
    made_up = _victim_job("forged-wrong-key")
    _write_letter(
        redis_client, "forged0000000002", signed=JobSigner([b"w" * 32]).sign(HANDLE_WEBHOOK, made_up.model_dump())
    )
    # 3. The genuine envelope's signature over a victim's body.
    victim = _victim_job("forged-spliced").model_dump()
    spliced = {**genuine.signed, **{k: victim[k] for k in ("resource_id", "body", "idempotency_key")}}
    _write_letter(redis_client, "forged0000000003", signed=spliced)
    assert store.count() == 4
    listed = subprocess.run(
        cli_command("dead-letters", "list"), env=base_env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and "4 dead letter(s)" in listed.stdout, listed.stderr

    replay = subprocess.run(
        cli_command("dead-letters", "replay", "--all"),
        env=base_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert replay.returncode == 1, replay.stdout + replay.stderr
    refused = [line for line in replay.stderr.splitlines() if line.startswith("refused ")]
    assert sorted(line.split()[1] for line in refused) == ["forged0000000001", "forged0000000002", "forged0000000003"]
    assert sum("holds no signed job" in line for line in refused) == 1
    assert sum("does not verify" in line for line in refused) == 2
    assert "replayed 1 dead letter(s), refused 3" in replay.stdout
    done = wait_until(
        lambda: [d for d in records("done") if d["resource"] == "genuine-1"], timeout=30, what="the replay to run"
    )
    assert done[0]["key"] == genuine.job.idempotency_key
    wait_until(
        lambda: queue_length(redis_client, QUEUE) == 0 and redis_client.hlen("unacked") == 0,
        timeout=20,
        what="the queue to drain",
    )
    assert len(_started(records, "genuine-1")) == 4, "three failed attempts, then the replay, once"
    assert len([d for d in records("done") if d["resource"] == "genuine-1"]) == 1
    for resource in ("forged-unsigned", "forged-wrong-key", "forged-spliced"):
        assert _started(records, resource) == [], f"{resource} must never reach a handler"
        assert resource not in worker.output()
    assert {x.id for x in store.recent()} == {"forged0000000001", "forged0000000002", "forged0000000003"}


@pytest.mark.e2e
def test_validly_signed_job_older_than_the_max_age_is_refused_and_never_runs(
    start_worker, redis_client, records, base_env
):
    worker = start_worker(RELIABILITY_APP)
    stale = WebhookJob.for_delivery("file.ready", "stale-1", json.dumps(webhook_payload("stale-1")).encode(), 0)
    issued = int(time.time()) - DEFAULT_JOB_MAX_AGE - 3600
    message = build_task_message(HANDLE_WEBHOOK, SIGNER.sign(HANDLE_WEBHOOK, stale.model_dump(), issued), "{}", QUEUE)
    # As the ingress would have left it: in the in-flight ledger too, which must let go of it.
    redis_client.hset(ledger_key(), stale.idempotency_key, message)
    redis_client.zadd(ledger_due_key(), {stale.idempotency_key: time.time() + 600})
    redis_client.lpush(QUEUE, message)
    fresh = WebhookJob.for_delivery("file.ready", "fresh-1", json.dumps(webhook_payload("fresh-1")).encode(), 0)
    redis_client.lpush(QUEUE, build_task_message(HANDLE_WEBHOOK, fresh.model_dump(), "{}", QUEUE, SIGNER))

    store = _store(redis_client)
    wait_until(lambda: store.count() == 1, timeout=30, what="the stale job to be refused")
    wait_until(lambda: _started(records, "fresh-1"), timeout=30, what="a job signed now to run")
    [letter] = store.recent()
    assert letter.reason == "expired" and letter.job is None and letter.signed is None
    assert "FRAMEIO_KIT_JOB_MAX_AGE" in letter.error
    assert "stale-1" not in redis_client.get(dead_letter_key(letter.id)).decode(), "refused: ids only"
    assert _started(records, "stale-1") == []
    assert "refused frameio_kit.handle_webhook" in worker.output() and "stale-1" not in worker.output()
    wait_until(
        lambda: not redis_client.hexists(ledger_key(), stale.idempotency_key),
        timeout=10,
        what="the ledger to let go of the expired job",
    )
    assert redis_client.zscore(ledger_due_key(), stale.idempotency_key) is None


def test_verify_refuses_jobs_issued_outside_the_max_age_either_side():
    signer = JobSigner([JOB_SIGNING_KEY.encode()], max_age=3600)
    now = 1_800_000_000
    kwargs = {"resource_id": "r", "n": 1}

    assert signer.verify("t", signer.sign("t", kwargs, now - 3600), now) == "valid"
    assert signer.verify("t", signer.sign("t", kwargs, now - 3601), now) == "expired"
    assert signer.verify("t", signer.sign("t", kwargs, now + 3601), now) == "expired"
    signed = signer.sign("t", kwargs, now - 7200)
    assert signer.verify("t", {**signed, "job_issued_at": now}, now) == "invalid", "the issued-at is signed"
    assert signer.verify("t", {**signed, "job_issued_at": True}, now) == "invalid"
    assert signer.verify("t", {k: v for k, v in signed.items() if k != "job_issued_at"}, now) == "missing"
    assert JobSigner([b"w" * 32], max_age=3600).verify("t", signed, now) == "invalid", "bad keys are not 'expired'"


def test_job_max_age_below_the_longest_retry_schedule_is_refused():
    settings = Settings()
    floor = settings.job_max_age_floor
    # Each of the 3 attempts held up once by a dead worker (2 x 900 s), and 2 retries at their 300 s cap.
    assert floor == 3 * 1800 + 2 * 300 + 1
    assert settings.job_max_age_seconds == DEFAULT_JOB_MAX_AGE
    with pytest.raises(ValueError, match="FRAMEIO_KIT_JOB_MAX_AGE=6000 is shorter than the 6001 s"):
        Settings(job_max_age=6000)
    assert Settings(job_max_age=floor).job_max_age_seconds == floor
    # A long visibility timeout raises the default with it rather than failing at start.
    long_tasks = Settings(visibility_timeout=86400)
    assert long_tasks.job_max_age_seconds == long_tasks.job_max_age_floor > DEFAULT_JOB_MAX_AGE
    assert JobSigner.from_settings(Settings(job_max_age=floor)).max_age == floor
