"""Real processes for end-to-end tests: free ports, polling with a deadline, and CLI processes with a log file."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy and return that; after `timeout`
    seconds raise AssertionError naming `what`. Wait on a condition, never on a fixed sleep."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)
        last = predicate()
    return last


def cli_command(*args: str) -> list[str]:
    """The argv of `frameio-kit ARGS...` run by this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "frameio_kit.cli", *args]


def celery_command(*args: str) -> list[str]:
    """The argv of a stock `celery -A workers ARGS...` run by this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "workers", *args]


class Service:
    """A process (`frameio-kit ingress`, a worker, ...) in its own session, its output in a log file.

    Stopping it signals the whole process group: uvicorn and Celery fork children.
    """

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], logdir: Path, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = logdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - the caller's own argv, no shell
            argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _check_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}")

    def wait_for_output(self, pattern: str, timeout: float = 30.0) -> None:
        """Wait until the output matches the regular expression `pattern`; fail if the process exits."""

        def seen() -> bool:
            self._check_running()
            return re.search(pattern, self.output()) is not None

        wait_until(seen, timeout=timeout, interval=0.1, what=f"{self.name} to print {pattern!r}")

    def wait_for_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until GET `url` answers 200 (e.g. an ingress's /healthz); fail if the process exits."""

        def ok() -> bool:
            self._check_running()
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ok, timeout=timeout, interval=0.1, what=f"{self.name} to answer {url}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()
