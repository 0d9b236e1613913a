"""End-to-end flows with every log line captured: no signing secret or signature may appear in any
log line, response body, task message, CLI output or Redis value."""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import redis

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

pytestmark = pytest.mark.e2e

RELIABILITY_APP = "tests.apps.reliability:app"
_B64 = re.compile(r"^[A-Za-z0-9+/=_-]{16,}$")


def _expand(value: str, depth: int = 0) -> Iterator[str]:
    """The text and whatever it encodes: JSON strings, base64 bodies (kombu's message bodies)."""
    yield value
    if depth > 4:
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        for text in _strings(parsed):
            yield from _expand(text, depth + 1)
    if _B64.match(value):
        try:
            yield from _expand(base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-8", "replace"), depth + 1)
        except (binascii.Error, ValueError):
            pass


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _redis_values(url: str) -> list[tuple[str, str]]:
    """Every key and value in every non-empty database, decoded."""
    found: list[tuple[str, str]] = []
    for db in range(16):
        client = redis.Redis.from_url(url.rsplit("/", 1)[0] + f"/{db}")
        for key in client.scan_iter():
            kind = client.type(key).decode()
            name = key.decode("utf-8", "replace")
            if kind == "string":
                values = [client.get(key)]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "hash":
                values = [x for pair in client.hgetall(key).items() for x in pair]
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            else:
                values = []
            found.append((f"db{db}:{name} (key)", name))
            found.extend((f"db{db}:{name}", v.decode("utf-8", "replace")) for v in values if v is not None)
        client.close()
    return found


def _leaks(where: str, text: str, needles: list[str]) -> list[str]:
    return [f"{needle[:12]}... in {where}" for piece in _expand(text) for needle in needles if needle in piece]


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
    scanned.extend(_redis_values(base_env["REDIS_URL"]))
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
    scanned.extend(_redis_values(base_env["REDIS_URL"]))

    # The fixtures write each process's output to tmp_path; scan every line of every one.
    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    assert any("ingress" in name and "rejected (SignatureInvalid)" in text for name, text in logs.items())
    assert "dead-lettered file.ready resource=leak-dead" in worker.output()
    scanned.extend(
        (f"{name} line {i}", line) for name, text in logs.items() for i, line in enumerate(text.splitlines())
    )

    needles = [WEBHOOK_SECRET, ACTION_SECRET, *sent_signatures, *(s.removeprefix("v0=") for s in sent_signatures)]
    leaks = [leak for where, text in scanned for leak in _leaks(where, text, needles)]
    assert leaks == []
