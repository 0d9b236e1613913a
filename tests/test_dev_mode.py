"""`frameio-kit dev` and `frameio-kit send`: one command, no Redis running, webhooks still go through the queue.

The example integration posts a comment through the Frame.io client; a local stand-in plays Frame.io.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from tests.helpers import Service, cli_command, free_port, wait_until

pytestmark = pytest.mark.e2e


class _FrameioStandIn(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append({"path": self.path, "auth": self.headers.get("authorization"), "body": json.loads(body)})
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


def test_dev_mode_runs_the_handler_through_the_queue(base_env, tmp_path, frameio_api):
    api_url, received = frameio_api
    port = free_port()
    env = {k: v for k, v in base_env.items() if k not in {"TEST_RECORD_URL"}}
    # Nothing listens here: were dev mode to use REDIS_URL instead of its own broker, nothing would work.
    env.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "FRAMEIO_TOKEN": "dev-token",
            "FRAMEIO_KIT_API_URL": api_url,
        }
    )
    dev = Service("dev", cli_command("dev", "examples.review_bot:app", "--port", str(port)), env, tmp_path)
    try:
        dev.wait_for_output(r" ready\.", timeout=60)
        banner = dev.output()
        assert "GENERATED A THROWAWAY TOKEN ENCRYPTION KEY" in banner
        secret = re.search(r"--secret (\S+)", banner).group(1)  # type: ignore[union-attr]
        action_secret = re.search(r"custom-action secret \(generated\): (\S+)", banner).group(1)  # type: ignore[union-attr]
        broker_port = int(re.search(r"broker\s+redis://127\.0\.0\.1:(\d+)/0", banner).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _healthy(url), timeout=30, what="the dev ingress")

        sent = send("file.ready", "--url", url, "--secret", secret, "--resource-id", "file-123", env=env)
        assert sent.returncode == 0, sent.stderr
        assert "-> 202 Accepted" in sent.stdout

        posted = wait_until(lambda: received, timeout=30, what="the comment posted through the Frame.io client")
        assert posted[0]["path"].endswith("/files/file-123/comments")
        assert posted[0]["auth"] == "Bearer dev-token"
        assert "ready for review" in posted[0]["body"]["data"]["text"]
        log = dev.output()
        assert "file.ready enqueued" in log  # the ingress queued it...
        assert re.search(r"frameio_kit\.worker: done file\.ready resource=file-123", log)  # ...a worker ran it

        forged = send("file.ready", "--url", url, "--secret", "not-the-secret", env=env)
        assert forged.returncode == 1
        assert "401" in forged.stdout

        step1 = send(
            "review.request", "--action", "--interaction-id", "i-1", "--url", url, "--secret", action_secret, env=env
        )
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
            "--secret",
            action_secret,
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
            "--secret",
            action_secret,
            env=env,
        )
        assert "Review requested" in step3.stdout

        dev.stop(timeout=40)
        assert dev.proc.returncode == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", broker_port), timeout=1).close()
    finally:
        dev.stop()


def test_send_rejects_bad_input_without_posting():
    result = send("file.ready", "--secret", "s", "--data", "[1, 2]", env={"PATH": "/usr/bin"})
    assert result.returncode == 2
    assert "--data must be a JSON object" in result.stderr


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
