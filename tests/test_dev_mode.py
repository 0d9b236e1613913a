"""`frameio-kit dev` and `frameio-kit send`: one command, no Redis running, webhooks still go through the queue;
per-session random secrets in a private file, real loopback checks, and an ingress that refuses public secrets.

The example integration posts a comment through the Frame.io client; a local stand-in plays Frame.io.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from frameio_kit.dev import dev_environment
from frameio_kit.dev_secrets import DevSession, is_loopback_host, write_session
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_matches
from shared.settings import Settings
from tests.helpers import ROOT, Service, cli_command, free_port, wait_until


class _FrameioStandIn(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append(
            {
                "path": self.path,
                "auth": self.headers.get("authorization"),
                "body": json.loads(body),
                "raw": body,
                "timestamp": self.headers.get(TIMESTAMP_HEADER),
                "signature": self.headers.get(SIGNATURE_HEADER),
            }
        )
        reply = json.dumps({"data": {"id": "c0ffee00-0000-4000-8000-000000000001", "text": "ok"}}).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def frameio_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: ClassVar[list[dict[str, Any]]] = []
    handler = type("Handler", (_FrameioStandIn,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def send(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command("send", *args), env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.e2e
def test_dev_mode_runs_the_handler_through_the_queue(base_env, tmp_path, frameio_api):
    """The README quick start: `frameio-kit dev examples/review_bot.py`, then `send` with no secret."""
    api_url, received = frameio_api
    port = free_port()
    secrets_file = tmp_path / "home" / "dev-secrets.json"
    env = {k: v for k, v in base_env.items() if k not in {"TEST_RECORD_URL"}}
    # Nothing listens here: were dev mode to use REDIS_URL instead of its own broker, nothing would work.
    env.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "FRAMEIO_TOKEN": "dev-token",
            "FRAMEIO_KIT_API_URL": api_url,
            "FRAMEIO_KIT_DEV_SECRETS_FILE": str(secrets_file),
        }
    )
    dev = Service("dev", cli_command("dev", "examples/review_bot.py", "--port", str(port)), env, tmp_path, cwd=ROOT)
    try:
        dev.wait_for_output(r" ready\.", timeout=60)
        banner = dev.output()
        assert "GENERATED A THROWAWAY TOKEN ENCRYPTION KEY" in banner
        session = json.loads(secrets_file.read_text())
        secret, action_secret = session["webhook_secret"], session["custom_action_secret"]
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
        assert secret not in banner and action_secret not in banner
        assert f"frameio-kit send file.ready --url http://127.0.0.1:{port}/" in banner
        broker_port = int(re.search(r"broker\s+redis://127\.0\.0\.1:(\d+)/0", banner).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/"
        dev.wait_for_http(url + "healthz")

        sent = send("file.ready", "--url", url, "--resource-id", "file-123", env=env)
        assert sent.returncode == 0, sent.stderr
        assert "-> 202 Accepted" in sent.stdout

        posted = wait_until(lambda: received, timeout=30, what="the comment posted through the Frame.io client")
        assert posted[0]["path"].endswith("/files/file-123/comments")
        assert posted[0]["auth"] == "Bearer dev-token"
        assert "ready for review" in posted[0]["body"]["data"]["text"]
        # INFO lines reach the log within FRAMEIO_KIT_LOG_FLUSH_INTERVAL (docs/operations.md): wait for them.
        done_line = re.compile(r"frameio_kit\.worker: done file\.ready resource=file-123")
        wait_until(
            lambda: done_line.search(dev.output()), timeout=10, what="the worker's done line"
        )  # ...a worker ran it
        log = dev.output()
        assert "file.ready enqueued" in log  # the ingress queued it...

        forged = send("file.ready", "--url", url, "--secret", "not-the-secret", env=env)
        assert forged.returncode == 1
        assert "401" in forged.stdout

        step1 = send("review.request", "--action", "--interaction-id", "i-1", "--url", url, env=env)
        assert step1.returncode == 0, step1.stderr
        assert "Step 1 of 2" in step1.stdout
        step2 = send(
            "review.request",
            "--interaction-id",
            "i-1",
            "--data",
            '{"reviewer": "ana"}',
            "--url",
            url,
            env=env,
        )
        assert "Step 2 of 2" in step2.stdout and '"value": "ana"' in step2.stdout
        step3 = send(
            "review.request",
            "--interaction-id",
            "i-1",
            "--data",
            '{"reviewer": "ana", "notes": "grade"}',
            "--url",
            url,
            env=env,
        )
        assert "Review requested" in step3.stdout

        dev.stop(timeout=40)
        assert dev.proc.returncode == 0
        assert not secrets_file.exists(), "the session's secrets outlive it"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", broker_port), timeout=1).close()
    finally:
        dev.stop()


def test_send_rejects_bad_input_without_posting():
    result = send("file.ready", "--secret", "s", "--data", "[1, 2]", env={"PATH": "/usr/bin"})
    assert result.returncode == 2
    assert "--data must be a JSON object" in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("127.attacker.example", False),
        ("localhost.attacker.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, nothing binds to it
        ("10.0.0.1", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_loopback_is_decided_by_address_not_by_prefix(host: str, loopback: bool):
    assert is_loopback_host(host) is loopback


def test_dev_generates_fresh_random_secrets_each_session(monkeypatch):
    monkeypatch.delenv("FRAMEIO_KIT_JOB_SIGNING_KEYS", raising=False)
    monkeypatch.delenv("FRAMEIO_KIT_SESSION_SECRET", raising=False)
    first_env, first = dev_environment(Settings(), "redis://127.0.0.1:1/0")
    _, second = dev_environment(Settings(), "redis://127.0.0.1:1/0")
    names = ("WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_KIT_JOB_SIGNING_KEYS", "FRAMEIO_KIT_SESSION_SECRET")
    for name in names:
        assert len(first[name]) >= 32 and first[name] != second[name]
        assert first_env[name] == first[name]
    assert first["WEBHOOK_SECRET"] != first["CUSTOM_ACTION_SECRET"]
    assert "frameio-kit-dev" not in json.dumps(first)


def test_dev_with_one_secret_set_keeps_it_and_generates_the_other():
    env, generated = dev_environment(Settings(webhook_secret="mine-and-long-enough"), "redis://127.0.0.1:1/0")
    assert "WEBHOOK_SECRET" not in env
    assert generated["CUSTOM_ACTION_SECRET"] not in {"frameio-kit-dev-action-secret", "change-me"}
    assert len(generated["CUSTOM_ACTION_SECRET"]) >= 32


def test_dev_replaces_placeholder_secrets():
    _, generated = dev_environment(
        Settings(webhook_secret="change-me", custom_action_secret="frameio-kit-dev-action-secret"), "redis://x:1/0"
    )
    assert {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET"} <= set(generated)


def _session(tmp_path: Path, port: int) -> tuple[Path, DevSession]:
    path = tmp_path / "private" / "dev-secrets.json"
    session = DevSession(port=port, pid=os.getpid(), webhook_secret="w" * 40, custom_action_secret="a" * 40)
    write_session(path, session)
    return path, session


def test_session_file_is_private_and_send_signs_with_it_for_its_own_port(tmp_path, frameio_api):
    url, received = frameio_api
    port = int(url.rsplit(":", 1)[1])
    path, session = _session(tmp_path, port)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    env = {"PATH": os.environ["PATH"], "FRAMEIO_KIT_DEV_SECRETS_FILE": str(path)}

    sent = send("file.ready", "--url", url + "/", env=env)
    assert sent.returncode == 0, sent.stderr
    action = send("review.request", "--action", "--url", f"http://localhost:{port}/", env=env)
    assert action.returncode == 0, action.stderr
    webhook, step = received
    assert signature_matches(webhook["raw"], webhook["timestamp"], webhook["signature"], session.webhook_secret)
    assert signature_matches(step["raw"], step["timestamp"], step["signature"], session.custom_action_secret)


@pytest.mark.parametrize("host", ["127.attacker.example", "192.0.2.1"])
def test_send_does_not_use_the_dev_session_for_another_host(tmp_path, host):
    port = free_port()
    path, _ = _session(tmp_path, port)
    env = {"PATH": os.environ["PATH"], "FRAMEIO_KIT_DEV_SECRETS_FILE": str(path)}
    result = send("file.ready", "--url", f"http://{host}:{port}/", env=env)
    assert result.returncode == 2
    assert "no secret" in result.stderr


def test_send_ignores_a_session_file_others_can_read(tmp_path):
    port = free_port()
    path, _ = _session(tmp_path, port)
    path.chmod(0o644)
    env = {"PATH": os.environ["PATH"], "FRAMEIO_KIT_DEV_SECRETS_FILE": str(path)}
    result = send("file.ready", "--url", f"http://127.0.0.1:{port}/", env=env)
    assert result.returncode == 2
    assert "no secret" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_SECRET", "change-me"),
        ("CUSTOM_ACTION_SECRET", "change-me"),
        ("WEBHOOK_SECRET", "frameio-kit-dev-webhook-secret"),
        ("CUSTOM_ACTION_SECRET", "frameio-kit-dev-action-secret"),
    ],
)
def test_ingress_refuses_placeholder_and_well_known_dev_secrets(base_env, variable, value):
    env = {**base_env, "WEBHOOK_SECRET": "a-real-webhook-secret", "CUSTOM_ACTION_SECRET": "a-real-action-secret"}
    env[variable] = value
    result = subprocess.run(
        cli_command("ingress", "tests.apps.basic:app", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_stops_with_a_clear_error_when_the_secrets_file_cannot_be_written(base_env, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**base_env, "FRAMEIO_KIT_DEV_SECRETS_FILE": str(blocker / "dev-secrets.json")}
    result = subprocess.run(
        cli_command("dev", "examples/review_bot.py", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "FRAMEIO_KIT_DEV_SECRETS_FILE" in result.stderr and "Traceback" not in result.stderr
