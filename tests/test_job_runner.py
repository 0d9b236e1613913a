"""One job runner for every kind: an action job is retried per its own `max_retries`, dead-lettered
with its attempts, listed and replayed by the CLI like a webhook; and the CLI prints what it lists
with control characters escaped."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import pytest

from shared.jobs.contract import HANDLE_ACTION_JOB, ActionJob, WebhookJob
from shared.jobs.dead_letters import DeadLetterStore
from shared.jobs.signing import SIGNATURE_FIELD, JobSigner, signing_keys
from shared.settings import Settings
from tests.helpers import ACTION_SECRET, ROOT, action_payload, cli_command, post_signed, wait_until

JOBS_APP = "tests.apps.jobs:app"
KEY = b"k" * 32


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("dead-letters", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _store(client: Any) -> DeadLetterStore:
    return DeadLetterStore(client, max_entries=100, retention=3600, completion_ttl=600)


@pytest.mark.e2e
def test_failing_action_job_is_retried_per_handler_dead_lettered_and_replayed(
    start_ingress, start_worker, redis_client, records, base_env
):
    url = start_ingress(JOBS_APP)
    start_worker(JOBS_APP)
    interaction = str(uuid.uuid4())
    response = post_signed(url, action_payload(interaction, type="tests.doomed"), ACTION_SECRET)
    assert response.status_code == 200 and response.json()["title"] == "Started"

    store = _store(redis_client)
    wait_until(store.count, timeout=30, what="the action job to be dead-lettered")
    # max_retries=1 on the handler (the default is 2): two runs, not three.
    assert [r["interaction"] for r in records("doomed")] == [interaction, interaction]
    letter = store.recent()[0]
    assert letter.task == HANDLE_ACTION_JOB and isinstance(letter.job, ActionJob)
    assert letter.reason == "exhausted"
    assert [a.number for a in letter.attempts] == [1, 2]
    assert all(a.error == "RuntimeError: export service unavailable" for a in letter.attempts)

    listed = _run_cli(base_env, "list")
    assert listed.returncode == 0, listed.stderr
    assert f"job tests.doomed interaction={interaction}" in listed.stdout
    assert "attempts=2  exhausted: RuntimeError: export service unavailable" in listed.stdout

    redis_client.select(1)
    redis_client.set("test:heal", "1")
    redis_client.select(0)
    replayed = _run_cli(base_env, "replay", letter.id[:8])
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter(s)" in replayed.stdout
    wait_until(lambda: len(records("doomed")) == 3, timeout=20, what="the replayed job to run in the worker")
    wait_until(lambda: redis_client.hlen("unacked") == 0, timeout=10, what="the replay to be acknowledged")
    assert store.count() == 0


def _webhook_job(resource: str) -> WebhookJob:
    return WebhookJob(
        event_type="file.ready",
        resource_id=resource,
        body="{}",
        timestamp=int(time.time()),
        received_at=time.time(),
        idempotency_key=uuid.uuid4().hex,
    )


def test_dead_letters_list_escapes_control_characters(redis_client, base_env):
    store = _store(redis_client)
    store.dead_letter(_webhook_job("evil\x1b[2J\x1b]0;owned\x07"), "permanent", "ValueError: bad \x1b[31mred\r")

    listed = _run_cli(base_env, "list")

    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout and "\r" not in listed.stdout
    assert r"resource=evil\x1b[2J\x1b]0;owned\x07" in listed.stdout
    assert r"ValueError: bad \x1b[31mred\r" in listed.stdout


def test_signature_covers_task_name_and_every_field():
    signer = JobSigner([KEY])
    kwargs = {"b": 1, "a": "é", "nested": {"y": [1.5, None]}}
    signed = signer.sign("task.one", kwargs)

    assert signer.verify("task.one", signed) == "valid"
    assert signer.verify("task.two", signed) == "invalid"
    assert signer.verify("task.one", {**signed, "b": 2}) == "invalid"
    assert signer.verify("task.one", {**signed, "extra": 1}) == "invalid"
    assert signer.verify("task.one", kwargs) == "missing"
    assert signer.verify("task.one", {**signed, SIGNATURE_FIELD: "é"}) == "invalid"
    assert JobSigner([b"x" * 32]).verify("task.one", signed) == "invalid"


def test_spliced_json_matches_the_signed_dict_and_rotation_verifies_old_keys():
    import orjson

    old, new = JobSigner([KEY]), JobSigner([b"n" * 32, KEY])
    kwargs = {"event_type": "file.ready", "received_at": 1732880000.123456, "body": '{"x": "\\u00e9"}'}

    assert orjson.loads(old.signed_json("t", kwargs, 1_700_000_000)) == old.sign("t", kwargs, 1_700_000_000)
    assert orjson.loads(old.signed_json("t", {}, 1_700_000_000)) == old.sign("t", {}, 1_700_000_000)
    assert new.verify("t", old.sign("t", kwargs)) == "valid"
    assert old.verify("t", new.sign("t", kwargs)) == "invalid"


def test_signing_keys_are_required_and_long_enough():
    with pytest.raises(ValueError, match="FRAMEIO_KIT_JOB_SIGNING_KEYS"):
        signing_keys(Settings(job_signing_keys=None))
    with pytest.raises(ValueError, match="shorter than 32"):
        signing_keys(Settings(job_signing_keys="a" * 32 + ",short"))
    assert signing_keys(Settings(job_signing_keys=" " + "a" * 32 + " , " + "b" * 40)) == [b"a" * 32, b"b" * 40]
    assert len(signing_keys(Settings(job_signing_keys=None, dev=True))) == 1


@pytest.mark.parametrize("command", [("worker", JOBS_APP), ("ingress", JOBS_APP), ("dead-letters", "replay", "--all")])
def test_commands_refuse_to_start_without_a_signing_key(base_env, command):
    env = {k: v for k, v in base_env.items() if k != "FRAMEIO_KIT_JOB_SIGNING_KEYS"}
    env["WEBHOOK_SECRET"], env["CUSTOM_ACTION_SECRET"] = "w" * 16, "c" * 16
    result = subprocess.run(
        cli_command(*command), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "FRAMEIO_KIT_JOB_SIGNING_KEYS" in result.stderr
