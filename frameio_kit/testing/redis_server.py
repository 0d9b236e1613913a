"""A real, private `redis-server` on a free port: for tests, benchmarks and `frameio-kit dev`."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from frameio_kit.parent_death import dies_with_parent
from frameio_kit.testing.processes import free_port
from shared.errors import RedisServerUnavailable


class RedisServer:
    """A `redis-server` bound to 127.0.0.1 on a free port, with no snapshots.

    `with RedisServer() as server: server.url` starts it and stops it. It can be stopped and
    started again on the same port (to test outages); `persistent=True` turns on an fsync'd
    append-only file so a restart keeps the data. Without `workdir`, a temporary directory is
    used and removed on `stop()`. `own_session=True` keeps a terminal's Ctrl+C from reaching it;
    `die_with_parent=True` stops it when the thread that started it dies, even by SIGKILL (Linux only,
    frameio_kit/parent_death.py), so start it from the main thread.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        persistent: bool = False,
        own_session: bool = False,
        die_with_parent: bool = False,
    ) -> None:
        self.port = free_port()
        self.persistent = persistent
        self.own_session = own_session
        self.die_with_parent = die_with_parent
        self._own_dir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="frameio-kit-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`."""
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerUnavailable(
                "no redis-server on PATH: install one (apt-get install redis-server, brew install redis)"
            )
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        files = ["--dir", str(self.workdir), "--logfile", str(self.log_path)]
        self.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence, *files],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.own_session,
            # SIGTERM: redis-server has no children of its own (no snapshots), and shuts down at once on it.
            preexec_fn=dies_with_parent(signal.SIGTERM) if self.die_with_parent else None,
        )
        deadline = time.monotonic() + timeout
        while not self.pings():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RedisServerUnavailable(f"redis-server did not start on port {self.port} (see {self.log_path})")
            time.sleep(0.05)

    def pings(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s); `start()` runs it again on the same port."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def close(self) -> None:
        """Stop it for good, removing a temporary directory."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
