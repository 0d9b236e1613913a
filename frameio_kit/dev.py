"""`frameio-kit dev`: ingress, one worker and a private redis-server in one process tree, for a laptop.

Webhooks take the production path (signed POST, Redis queue, Celery worker); only the broker is
private and throwaway, and missing secrets and the token encryption key are generated, loudly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from frameio_kit.send import DEV_ACTION_SECRET, DEV_WEBHOOK_SECRET
from shared.core.loading import load_app
from shared.settings import Settings, get_settings

_WORKER_CONCURRENCY = 8
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DevError(Exception):
    """Dev mode cannot start (no redis-server, port taken...)."""


@dataclass
class DevOptions:
    app: str
    host: str
    port: int
    redis_url: str | None
    reload: bool


@dataclass
class _Tree:
    """The child processes of one dev session."""

    redis: subprocess.Popen[bytes] | None = None
    redis_dir: Path | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)


def run_dev(options: DevOptions, settings: Settings) -> int:
    """Start everything, supervise it until a signal or a crash, then stop it in order."""
    stop = threading.Event()
    for sig in _STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    tree = _Tree()
    try:
        redis_url = options.redis_url or _start_redis(tree)
        generated = _export_dev_env(settings, redis_url, options.host)
        get_settings.cache_clear()
        load_app(options.app)  # fail here, in the terminal, before any child starts
        _announce(options, generated, redis_url)
        changed = _watch(stop) if options.reload else None
        while not stop.is_set():
            tree.children = _start_children(options)
            code = _supervise(tree.children, stop, changed)
            if code is not None:
                print(f"frameio-kit dev: a child process exited with {code}; stopping", file=sys.stderr)
                return 1
            if not stop.is_set():
                print("frameio-kit dev: code changed, restarting ingress and worker", file=sys.stderr)
                _stop_children(tree.children, settings.shutdown_grace)
        return 0
    finally:
        _stop_children(tree.children, settings.shutdown_grace)
        _stop_redis(tree)


def _start_redis(tree: _Tree) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevError(
            "dev mode runs a private redis-server and none is on PATH: install one "
            "(apt-get install redis-server, brew install redis) or pass --redis-url"
        )
    tree.redis_dir = Path(tempfile.mkdtemp(prefix="frameio-kit-dev-"))
    port = _free_port()
    # Own session: Ctrl+C must not stop the broker before the worker has finished its handlers.
    tree.redis = subprocess.Popen(  # noqa: S603 - our own argv, no shell
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tree.redis_dir),
            "--logfile",
            str(tree.redis_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not _pings(port):
        if tree.redis.poll() is not None or time.monotonic() > deadline:
            raise DevError(f"redis-server did not start on port {port} (see {tree.redis_dir / 'redis.log'})")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def _export_dev_env(settings: Settings, redis_url: str, host: str) -> dict[str, str]:
    """Put what the children need in the environment they inherit; returns what was generated."""
    generated: dict[str, str] = {}
    # On a loopback address the well-known dev secrets let `frameio-kit send` work with no flags;
    # bound anywhere else, the secrets are random.
    loopback = host in {"localhost", "::1"} or host.startswith("127.")
    if settings.webhook_secret is None:
        generated["WEBHOOK_SECRET"] = DEV_WEBHOOK_SECRET if loopback else secrets.token_urlsafe(24)
    if settings.custom_action_secret is None:
        generated["CUSTOM_ACTION_SECRET"] = DEV_ACTION_SECRET if loopback else secrets.token_urlsafe(24)
    if settings.encryption_keys is None:
        generated["FRAMEIO_KIT_ENCRYPTION_KEYS"] = Fernet.generate_key().decode("ascii")
    if settings.job_signing_keys is None:  # one per session, shared by the ingress and worker children
        generated["FRAMEIO_KIT_JOB_SIGNING_KEYS"] = secrets.token_urlsafe(32)
    os.environ.update(
        {"FRAMEIO_KIT_DEV": "1", "REDIS_URL": redis_url, "FRAMEIO_KIT_BROKER_URL": redis_url, **generated}
    )
    return generated


def _announce(options: DevOptions, generated: dict[str, str], redis_url: str) -> None:
    url = f"http://{options.host}:{options.port}/"
    lines = [
        "frameio-kit DEV MODE: not for production",
        f"  app        {options.app}",
        f"  ingress    {url}  (metrics at {url}metrics)",
        f"  broker     {redis_url}" + ("  (private redis-server, discarded at exit)" if not options.redis_url else ""),
        f"  worker     1 process, {_WORKER_CONCURRENCY} concurrent handlers",
    ]
    if "FRAMEIO_KIT_ENCRYPTION_KEYS" in generated:
        lines += [
            "",
            "  !! GENERATED A THROWAWAY TOKEN ENCRYPTION KEY (FRAMEIO_KIT_ENCRYPTION_KEYS) !!",
            "  !! Tokens stored in this session cannot be decrypted after it ends.        !!",
            "  !! Production refuses to start without FRAMEIO_KIT_ENCRYPTION_KEYS.        !!",
        ]
    # Dev-only secrets, shown once on the developer's own terminal so `send` can sign with them.
    shown = generated.get("WEBHOOK_SECRET", "$WEBHOOK_SECRET")
    if shown == DEV_WEBHOOK_SECRET and (options.host, options.port) in {("127.0.0.1", 8000), ("localhost", 8000)}:
        send = "frameio-kit send file.ready"
    else:
        send = f"frameio-kit send file.ready --url {url} --secret {shown}"
    lines += ["", "  send an event (from another terminal):", f"    {send}"]
    if "CUSTOM_ACTION_SECRET" in generated:
        lines.append(f"  custom-action secret (generated): {generated['CUSTOM_ACTION_SECRET']}")
    width = max(len(line) for line in lines) + 2
    bar = "=" * width
    print("\n".join([bar, *lines, bar]), file=sys.stderr, flush=True)


def _start_children(options: DevOptions) -> list[subprocess.Popen[bytes]]:
    cli = [sys.executable, "-m", "frameio_kit.cli"]
    node = f"frameio-kit-dev-{os.getpid()}@{socket.gethostname()}"
    commands = [
        [*cli, "ingress", options.app, "--host", options.host, "--port", str(options.port)],
        [*cli, "worker", options.app, "--concurrency", str(_WORKER_CONCURRENCY), "--hostname", node],
    ]
    # Own sessions: a terminal's Ctrl+C reaches only this supervisor, which stops them in order.
    return [subprocess.Popen(command, start_new_session=True) for command in commands]  # noqa: S603


def _supervise(
    children: list[subprocess.Popen[bytes]], stop: threading.Event, changed: threading.Event | None
) -> int | None:
    """Wait for a stop signal (None), a code change (None) or a child's exit (its code)."""
    while not stop.wait(0.2):
        for child in children:
            code = child.poll()
            if code is not None:
                return code
        if changed is not None and changed.is_set():
            changed.clear()
            return None
    return None


def _stop_children(children: list[subprocess.Popen[bytes]], grace: float) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    children.clear()


def _stop_redis(tree: _Tree) -> None:
    if tree.redis is not None and tree.redis.poll() is None:
        tree.redis.terminate()
        try:
            tree.redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tree.redis.kill()
            tree.redis.wait()
    if tree.redis_dir is not None:
        shutil.rmtree(tree.redis_dir, ignore_errors=True)


def _watch(stop: threading.Event) -> threading.Event:
    """Set the returned event whenever a .py file under the working directory changes."""
    from watchfiles import PythonFilter, watch

    changed = threading.Event()

    def loop() -> None:
        for _ in watch(Path.cwd(), watch_filter=PythonFilter(), stop_event=stop):
            changed.set()

    threading.Thread(target=loop, name="frameio-kit-reload", daemon=True).start()
    return changed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
