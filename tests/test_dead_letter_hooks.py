"""`@app.on_dead_letter`: each hook runs in the worker once per dead letter, after it is stored, with its
summary (ids, type, reason, attempts, error class, times; never the body or a secret); a hook that
raises is logged and the dead letter stays, and the next hook still runs."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from frameio_kit import DeadLetterSummary
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.kombu_redis import build_task_message
from tests.helpers import WEBHOOK_SECRET, post_signed, wait_until, webhook_payload

pytestmark = pytest.mark.e2e

HOOKS_APP = "tests.apps.dead_letter_hooks:app"


def _summaries(redis_server) -> list[DeadLetterSummary]:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_server.db_url(1))
    return [DeadLetterSummary.model_validate_json(x) for x in client.lrange("test:summaries", 0, -1)]


def test_each_dead_letter_reaches_the_hooks_once_and_a_raising_hook_loses_nothing(
    start_ingress, start_worker, redis_client, redis_server
):
    url = start_ingress(HOOKS_APP)
    worker = start_worker(HOOKS_APP)
    marker = f"body-marker-{uuid.uuid4().hex}"
    retried = webhook_payload("res-retried", account={"id": "acct-7"}, workspace={"id": "ws-7"}, test_note=marker)
    permanent = webhook_payload("res-permanent", test_permanent=True)
    assert post_signed(url, retried, WEBHOOK_SECRET).status_code == 202
    assert post_signed(url, permanent, WEBHOOK_SECRET).status_code == 202
    # A job no ingress signed: refused, recorded by its ids only, and reported too.
    forged = WebhookJob.for_delivery("file.ready", "res-forged", json.dumps(webhook_payload("x")).encode(), 0)
    redis_client.lpush("frameio-kit", build_task_message(HANDLE_WEBHOOK, forged.model_dump(), forged.describe(), "q"))

    summaries = wait_until(lambda: len(_summaries(redis_server)) == 3 and _summaries(redis_server), timeout=30)
    store = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    assert store.count() == 3  # every dead letter is there, though the first hook raised each time
    by_reason = {s.reason: s for s in summaries}
    assert set(by_reason) == {"exhausted", "permanent", "unsigned"}

    exhausted = by_reason["exhausted"]
    letter = store.get(exhausted.id)
    assert letter is not None and letter.job is not None
    assert exhausted.event_id == letter.job.idempotency_key
    assert (exhausted.type, exhausted.handler, exhausted.task) == ("file.ready", "file.ready", HANDLE_WEBHOOK)
    assert (exhausted.attempts, exhausted.error_class) == (2, "TimeoutError")  # max_retries=1
    assert (exhausted.account_id, exhausted.workspace_id, exhausted.resource_id) == ("acct-7", "ws-7", "res-retried")
    assert exhausted.received_at is not None and exhausted.received_at <= exhausted.dead_lettered_at <= time.time()
    assert (by_reason["permanent"].attempts, by_reason["permanent"].error_class) == (1, "PermanentError")
    assert (by_reason["unsigned"].type, by_reason["unsigned"].attempts) == ("-", 0)

    raw = redis.Redis.from_url(redis_server.db_url(1)).lrange("test:summaries", 0, -1)
    assert not any(marker.encode() in x or b"upstream slow" in x for x in raw)  # no body, no error text
    assert worker.output().count("on_dead_letter hook broken_alert") == 3  # logged, one line each
    assert "ValueError" in worker.output() and marker not in worker.output()
