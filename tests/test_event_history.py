"""The event history (shared/events/history.py): written by the ingress in the round trip that queues
each job, updated by the workers at each status change, bounded by age and count in amortised steps,
off with FRAMEIO_KIT_EVENT_MAX=0; and holding no form answer, body, token or secret: a Redis scan after a
signed-in user's Form answers were handed off to a failing-then-retried job finds none of them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import redis

from frameio_kit import ActionEvent, App, Form, Message, TextField, WebhookEvent, hand_off
from frameio_kit.testing import IngressClient
from shared.events.history import RECORD_LUA, EventHistory, EventWriter, Queued
from shared.events.model import EventIds, meta_json
from shared.jobs.contract import idempotency_key
from shared.jobs.signing import JobSigner
from shared.oauth.token_store import TokenCipher
from shared.redis_keys import event_envelope_key, event_index_key, event_key
from shared.settings import Settings
from tests.helpers import ACTION_SECRET, WEBHOOK_SECRET, action_payload, post_signed, wait_until, webhook_payload
from tests.leak_support import expand
from tests.oauth_support import KEY_A, oauth_env, run_action, sign_in

HISTORY_APP = "tests.apps.history:app"
SECRET = "history-test-secret-3c1f"


def _history(client: redis.Redis, cipher: TokenCipher | None = None) -> EventHistory:
    return EventHistory(client, max_events=1000, retention=3600, cipher=cipher)


def _in_process_app() -> App:
    app = App()

    @app.on_webhook(["file.ready", "comment.created"], secret=SECRET)
    async def on_event(event: WebhookEvent) -> None:
        return None

    @app.on_action("my_app.export", name="Export", description="Export", secret=SECRET)
    async def export(event: ActionEvent) -> Form | Message:
        if event.data is None:
            return Form(title="Export", fields=[TextField(label="API key", name="api_key")])
        await hand_off(event)
        return Message(title="Exporting")

    @app.on_action_job("my_app.export")
    async def export_job(event: ActionEvent) -> None:
        return None

    return app


def _post_through_ingress(settings: Settings, payloads: list[dict[str, Any]]) -> list[int]:
    async def scenario() -> list[int]:
        async with IngressClient(_in_process_app(), settings=settings) as ingress:
            return [(await ingress.post(p)).status_code for p in payloads]

    return asyncio.run(scenario())


def test_the_ingress_records_each_acknowledged_webhook_once_with_its_ids(redis_server, redis_client):
    settings = Settings(redis_url=redis_server.url)
    payload = webhook_payload("res-1", account={"id": "acct-9"}, workspace={"id": "ws-9"}, project={"id": "p-9"})
    other = webhook_payload("res-2", event_type="comment.created")

    assert _post_through_ingress(settings, [payload, payload, other]) == [202, 202, 202]

    records = {r.resource_id: r for r in _history(redis_client).newest()}
    assert set(records) == {"res-1", "res-2"}  # the duplicate delivery is one event
    first = records["res-1"]
    assert first.id == idempotency_key("file.ready", json.dumps(payload, separators=(",", ":")).encode())
    assert (first.kind, first.type, first.handler, first.status) == ("webhook", "file.ready", "file.ready", "queued")
    assert (first.account_id, first.workspace_id, first.project_id, first.user_id) == (
        "acct-9",
        "ws-9",
        "p-9",
        "user-1",
    )
    assert first.queue.startswith(settings.queue)  # the queue it went to (its account's shard, docs/tenants.md)
    assert abs(first.received_at - time.time()) < 60
    assert first.attempts == [] and first.trace_id is None
    # The webhook's signed job is kept for replay as the queue got it (Frame.io's ids, like the queue).
    assert redis_client.exists(event_envelope_key(first.id))
    stored = redis_client.hget(event_key(first.id), "m")
    assert stored is not None and b'"body"' not in stored and b"res-1" in stored


def test_an_action_job_is_recorded_and_its_signed_job_kept_only_sealed(redis_server, redis_client):
    cipher_key = KEY_A
    steps = [
        action_payload("int-1", event_type="my_app.export", action_id="act-1"),
        action_payload("int-1", event_type="my_app.export", data={"api_key": "sk-sealed-answer-1"}),
    ]
    sealed = Settings(redis_url=redis_server.url, encryption_keys=cipher_key, action_state="redis")
    assert _post_through_ingress(sealed, steps) == [200, 200]
    (record,) = _history(redis_client).newest()
    assert (record.kind, record.type, record.handler) == ("action_job", "my_app.export", "my_app.export")
    assert record.account_id == "acc-1" and record.user_id == "user-1"
    envelope = redis_client.get(event_envelope_key(record.id))
    assert envelope is not None and b"sk-sealed-answer-1" not in envelope and not envelope.startswith(b"{")
    task, signed = _history(redis_client, TokenCipher([cipher_key])).signed_job(record)
    assert task == "frameio_kit.handle_action_job"
    assert JobSigner.from_settings(sealed).verify(task, signed) == "valid"
    assert signed["form_history"] == [] and "sk-sealed-answer-1" in signed["body"]

    redis_client.flushall()
    plain = Settings(redis_url=redis_server.url, action_state="redis")  # no encryption key: not kept at all
    steps = [action_payload("int-2", event_type="my_app.export"), action_payload("int-2", data={"api_key": "sk-2"})]
    steps[1]["type"] = "my_app.export"
    assert _post_through_ingress(plain, steps) == [200, 200]
    (record,) = _history(redis_client).newest()
    assert not redis_client.exists(event_envelope_key(record.id))
    with pytest.raises(Exception, match="FRAMEIO_KIT_ENCRYPTION_KEYS"):
        _history(redis_client).signed_job(record)


def test_history_off_writes_nothing(redis_server, redis_client):
    settings = Settings(redis_url=redis_server.url, event_max=0)
    assert _post_through_ingress(settings, [webhook_payload("res-off")]) == [202]
    assert redis_client.hlen("frameio-kit:ledger") == 1  # queued as ever
    assert list(redis_client.scan_iter("frameio-kit:event*")) == []


def _batch(client: redis.Redis, writer: EventWriter, ids: list[str], now: float) -> None:
    meta = meta_json(
        kind="webhook",
        event_type="file.ready",
        handler="file.ready",
        ids=EventIds().as_tuple(),
        received_at=now,
        queue="q",
        trace_id=None,
    )
    keys, args = writer.script_call([Queued(i, meta, b"{}") for i in ids])
    args[1] = now  # the batch's clock: an old batch, then a new one
    client.eval(RECORD_LUA, len(keys), *keys, *args)


def test_bounds_trim_the_oldest_by_count_and_by_age_a_batch_at_a_time(redis_client):
    writer = EventWriter(Settings(event_max=10, event_retention=600))
    now = time.time()
    _batch(redis_client, writer, [f"old-{i}" for i in range(4)], now - 1000)  # older than the retention
    assert redis_client.zcard(event_index_key()) == 4
    assert 0 < redis_client.ttl(event_key("old-0")) <= 600  # each record expires by itself

    for i in range(14):
        _batch(redis_client, writer, [f"new-{i}"], now + i / 1000)

    index = [x.decode() for x in redis_client.zrange(event_index_key(), 0, -1)]
    assert sorted(index) == sorted(f"new-{i}" for i in range(4, 14))  # age took old-*, count the 4 oldest new
    assert not redis_client.exists(event_key("new-0"), event_envelope_key("new-0"))
    assert redis_client.exists(event_key("new-4"), event_envelope_key("new-4")) == 2

    redis_client.hset(event_key("new-4"), "s", "done")
    _batch(redis_client, writer, ["new-4"], now)  # written again (a duplicate): left as it is
    assert redis_client.hget(event_key("new-4"), "s") == b"done"


def _scan_history(client: redis.Redis) -> list[str]:
    """Every text held under the history's and the paused handlers' keys, expanded (JSON, base64)."""
    texts: list[str] = []
    for pattern in ("frameio-kit:event*", "frameio-kit:handlers:*"):
        for key in client.scan_iter(pattern):
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key)]
            elif kind == "hash":
                values = [v for pair in client.hgetall(key).items() for v in pair]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "zset":
                values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            else:
                values = []
            for value in values:
                texts += expand(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
            texts.append(key.decode())
    return texts


@pytest.mark.e2e
def test_a_redis_scan_of_the_history_finds_no_answer_body_or_token(
    ims, start_ingress, start_worker, redis_server, redis_client, records
):
    broker = redis_server.db_url(2)  # both Redis databases: state (db 0) and the broker (db 2)
    redis.Redis.from_url(broker).flushdb()
    env = {**oauth_env(ims), "FRAMEIO_KIT_BROKER_URL": broker}
    url = start_ingress(HISTORY_APP, extra_env=env)
    start_worker(HISTORY_APP, extra_env=env)

    form = run_action(url, str(uuid.uuid4()), event_type="my_app.export")
    callback, _ = sign_in(url, form)
    assert callback.status_code == 200
    interaction = str(uuid.uuid4())
    assert run_action(url, interaction, event_type="my_app.export")["title"] == "Export"
    api_key, note = f"sk-live-{uuid.uuid4().hex}", f"note-{uuid.uuid4().hex}"
    answers = action_payload(interaction, event_type="my_app.export", data={"api_key": api_key, "note": note})
    assert post_signed(url, answers, ACTION_SECRET).json()["title"] == "Exporting"
    body_marker = f"marker-{uuid.uuid4().hex}"
    assert post_signed(url, webhook_payload("scan-1", test_fail=body_marker), WEBHOOK_SECRET).status_code == 202

    runs = wait_until(lambda: len(records("export")) == 2 and records("export"), timeout=30, what="a retry, then done")
    assert runs[1]["token"] is not None
    queue_side = redis.Redis.from_url(broker)
    history = _history(queue_side)

    def settled() -> list[Any]:
        found = history.newest()
        return [r for r in found if r.status in ("done", "dead")]

    recorded = wait_until(lambda: len(settled()) == 2 and settled(), timeout=30, what="both events to settle")
    job = next(r for r in recorded if r.kind == "action_job")
    assert [(a.status, a.error) for a in job.attempts] == [("retrying", "RuntimeError"), ("done", None)]
    hook = next(r for r in recorded if r.kind == "webhook")
    assert [(a.status, a.error) for a in hook.attempts] == [("dead", "RuntimeError")]
    assert queue_side.exists(event_envelope_key(job.id))  # kept, sealed: the scan below does see it

    scanned = _scan_history(queue_side) + _scan_history(redis_client)
    assert any(job.id in text for text in scanned)  # the scan reaches the records
    secrets = [api_key, note, *ims.issued]
    assert [s for s in secrets if any(s in text for text in scanned)] == []
    # A webhook's signed job is kept as queued (Frame.io's body, as in the queue); its record never is.
    record_texts = [
        text
        for key in queue_side.scan_iter("frameio-kit:event:*")
        for value in queue_side.hvals(key)
        for text in expand(value.decode())
    ]
    assert not any(body_marker in text or api_key in text for text in record_texts)
