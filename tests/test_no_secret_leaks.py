"""End-to-end flows with every log line captured: no signing secret or signature may appear in any
log line, response body, task message, CLI output or Redis value."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from shared.core.signature import SIGNATURE_HEADER
from shared.jobs.dead_letters import DeadLetterStore
from tests.helpers import (
    ACTION_SECRET,
    ROOT,
    WEBHOOK_SECRET,
    action_payload,
    cli_command,
    sign_request,
    wait_until,
    webhook_payload,
)
from tests.leak_support import leaks_in, redis_values

pytestmark = pytest.mark.e2e

RELIABILITY_APP = "tests.apps.reliability:app"


def test_no_secret_or_signature_in_logs_responses_messages_or_redis(
    start_ingress, start_worker, redis_client, records, base_env, tmp_path
):
    debug = {"FRAMEIO_KIT_LOG_LEVEL": "DEBUG"}
    url = start_ingress(RELIABILITY_APP, extra_env=debug)
    sent_signatures: list[str] = []
    scanned: list[tuple[str, str]] = []

    def post(payload: dict, secret: str, name: str) -> httpx.Response:
        body, headers = sign_request(payload, secret)
        sent_signatures.append(headers[SIGNATURE_HEADER])
        response = httpx.post(url + "/", content=body, headers=headers, timeout=10)
        scanned.append((f"response to {name}", response.text + json.dumps(dict(response.headers))))
        return response

    assert post(webhook_payload("leak-ok"), WEBHOOK_SECRET, "ok").status_code == 202
    assert post(webhook_payload("leak-ok"), WEBHOOK_SECRET, "duplicate").status_code == 202
    assert post(webhook_payload("leak-flaky", test_fail_times=1), WEBHOOK_SECRET, "flaky").status_code == 202
    assert post(webhook_payload("leak-dead", test_permanent=True), WEBHOOK_SECRET, "dead").status_code == 202
    assert post(webhook_payload("leak-forged"), "not-the-secret", "forged").status_code == 401
    assert post(webhook_payload("leak-forged", type=7), WEBHOOK_SECRET, "bad schema").status_code in {400, 401, 422}
    assert post(action_payload("leak-action", type="my_app.echo"), ACTION_SECRET, "action").status_code == 200
    assert post(action_payload("leak-action", type="my_app.echo"), WEBHOOK_SECRET, "forged action").status_code == 401
    # Messages still queued: the task payloads as the broker holds them.
    scanned.extend(redis_values(base_env["REDIS_URL"]))
    assert any("frameio-kit" in where for where, _ in scanned)

    worker = start_worker(RELIABILITY_APP, extra_env=debug)
    store = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    wait_until(
        lambda: {d["resource"] for d in records("done")} >= {"leak-ok", "leak-flaky"},
        timeout=30,
        what="the webhooks to complete",
    )
    wait_until(lambda: store.count() == 1, timeout=30, what="the permanent failure to be dead-lettered")
    for args in (("list",), ("show", store.recent()[0].id)):
        out = subprocess.run(
            cli_command("dead-letters", *args),
            env={**base_env, **debug},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        scanned.append((f"dead-letters {args[0]}", out.stdout + out.stderr))
    scanned.extend(redis_values(base_env["REDIS_URL"]))

    # The fixtures write each process's output to tmp_path; scan every line of every one.
    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    assert any("ingress" in name and "rejected (SignatureInvalid)" in text for name, text in logs.items())
    assert "dead-lettered file.ready resource=leak-dead" in worker.output()
    scanned.extend(
        (f"{name} line {i}", line) for name, text in logs.items() for i, line in enumerate(text.splitlines())
    )

    needles = [WEBHOOK_SECRET, ACTION_SECRET, *sent_signatures, *(s.removeprefix("v0=") for s in sent_signatures)]
    leaks = [leak for where, text in scanned for leak in leaks_in(where, text, needles)]
    assert leaks == []
