"""Test helpers: real processes started through the CLI, polling with deadlines, signed requests."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from shared.core.signature import sign_headers

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

WEBHOOK_SECRET = "test-webhook-secret-5f2a"
ACTION_SECRET = "test-action-secret-9c1d"
JOB_SIGNING_KEY = "test-job-signing-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)
        last = predicate()
    return last


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
    return found


class RedisServer:
    """A private redis-server on a free port; can be stopped and started again on the same port."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._pings, timeout=10, what=f"redis-server on port {self.port}")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Service:
    """A CLI process (`frameio-kit ...` or `celery ...`) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = logdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            return re.search(pattern, self.output()) is not None

        wait_until(seen, timeout=timeout, interval=0.1, what=f"{self.name} to print {pattern!r}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "frameio_kit.cli", *args]


def webhook_payload(resource_id: str, event_type: str = "file.ready", **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "account": {"id": "acc-1"},
        "workspace": {"id": "ws-1"},
        "project": {"id": "proj-1"},
        "user": {"id": "user-1"},
        "resource": {"id": resource_id, "type": "file"},
        **extra,
    }


def action_payload(interaction_id: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "my_app.transcribe",
        "account_id": "acc-1",
        "action_id": "act-1",
        "interaction_id": interaction_id,
        "project": {"id": "proj-1"},
        "resource": {"id": "file-1", "type": "file"},
        "user": {"id": "user-1"},
        "workspace": {"id": "ws-1"},
        **extra,
    }
    if data is not None:
        payload["data"] = data
    return payload


def signed(payload: dict[str, Any] | bytes, secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_headers(body, secret, timestamp)}
    return body, headers


def post_signed(base_url: str, payload: dict[str, Any] | bytes, secret: str, **kw: Any) -> httpx.Response:
    body, headers = signed(payload, secret, kw.pop("timestamp", None))
    return httpx.post(base_url + "/", content=body, headers=headers, timeout=kw.pop("timeout", 10.0), **kw)
