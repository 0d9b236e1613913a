"""`frameio-kit dev`: ingress, one worker and a private redis-server in one process tree, for a laptop.

Webhooks take the production path (signed POST, Redis queue, Celery worker); only the broker is
private and throwaway. Missing secrets and keys are generated for the session: the signing secrets
go to a 0600 file for `frameio-kit send` (frameio_kit/dev_secrets.py), the token key is announced loudly.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from frameio_kit.dev_secrets import (
    KNOWN_SECRETS,
    DevSession,
    configured_secrets,
    is_loopback_host,
    new_secret,
    remove_session,
    session_path,
    write_session,
)
from frameio_kit.parent_death import dies_with_parent
from frameio_kit.testing.processes import cli_command
from frameio_kit.testing.redis_server import RedisServer
from shared.app.loading import load_app
from shared.errors import DevError, RedisServerUnavailable
from shared.settings import Settings, get_settings

_WORKER_CONCURRENCY = 8
# SIGHUP is a closed terminal: the same orderly stop as Ctrl+C (there is no SIGHUP on Windows).
_STOP_SIGNALS = tuple(
    sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig is not None
)
# What each child gets from the kernel when this process dies without stopping it (SIGKILL, a crash): the
# signal of the orderly stop, so each child also stops its own children. Linux only (frameio_kit/parent_death.py).
# uvicorn closes its socket at once, then stops its worker processes if it has any. Celery's SIGTERM is the
# warm shutdown, bounded by FRAMEIO_KIT_SHUTDOWN_GRACE (workers/shutdown.py); the cold one (SIGQUIT) hangs
# while a handler runs in the threads pool, which cannot cancel it. Prefork pool processes get Celery's own SIGKILL.
_CHILD_DEATH_SIGNAL = signal.SIGTERM


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

    redis: RedisServer | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)


def run_dev(options: DevOptions, settings: Settings) -> int:
    """Start everything, supervise it until a signal or a crash, then stop it in order."""
    stop = threading.Event()
    for sig in _STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    tree = _Tree()
    secrets_file = session_path(settings)
    refuse_taken_port(options.host, options.port)
    try:
        redis_url = options.redis_url or _start_redis(tree)
        env, generated = dev_environment(settings, redis_url)
        os.environ.update(env)
        get_settings.cache_clear()
        load_app(options.app)  # fail here, in the terminal, before any child starts
        session = DevSession(
            port=options.port,
            pid=os.getpid(),
            webhook_secret=generated.get("WEBHOOK_SECRET"),
            custom_action_secret=generated.get("CUSTOM_ACTION_SECRET"),
        )
        try:
            write_session(secrets_file, session)
        except OSError as exc:
            raise DevError(
                f"cannot write the dev secrets file {secrets_file}: {exc.strerror}; "
                "set FRAMEIO_KIT_DEV_SECRETS_FILE to a writable path"
            ) from None
        _announce(options, generated, redis_url, secrets_file)
        changed = _watch(stop) if options.reload else None
        while not stop.is_set():
            tree.children = _start_children(options)
            exited = _supervise(tree.children, stop, changed)
            if exited is not None:
                if exited is tree.children[0]:  # the ingress: perhaps something took its port since the check
                    refuse_taken_port(options.host, options.port)
                print(f"frameio-kit dev: a child process exited with {exited.returncode}; stopping", file=sys.stderr)
                return 1
            if not stop.is_set():
                print("frameio-kit dev: code changed, restarting ingress and worker", file=sys.stderr)
                _stop_children(tree.children, settings.shutdown_grace)
        return 0
    finally:
        _stop_children(tree.children, settings.shutdown_grace)
        if tree.redis is not None:
            tree.redis.close()
        remove_session(secrets_file, os.getpid())


def _start_redis(tree: _Tree) -> str:
    # Own session: Ctrl+C must not stop the broker before the worker has finished its handlers.
    tree.redis = RedisServer(own_session=True, die_with_parent=True)
    try:
        tree.redis.start()
    except RedisServerUnavailable as exc:
        raise DevError(f"dev mode runs a private redis-server: {exc}; or pass --redis-url") from None
    return tree.redis.url


def refuse_taken_port(host: str, port: int) -> None:
    """Raise DevError with a one-line hint when something already listens on the ingress's address, most
    often the ingress of an earlier session that was not stopped; uvicorn alone would print errno 98."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            probe.bind(address)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return  # another problem (a bad host, a privileged port): uvicorn reports it in its words
        raise DevError(
            f"port {port} on {host} is already in use, perhaps by an earlier `frameio-kit dev`: "
            f"see what holds it with `lsof -nP -iTCP:{port} -sTCP:LISTEN` and stop it, or pass --port"
        ) from None


def dev_environment(settings: Settings, redis_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """What the children need in their environment, and which of it was generated.

    Each signing secret that is unset, a placeholder or a public dev value gets a fresh random one,
    whatever the other is and whatever the address: a secret is never well known.
    """
    generated: dict[str, str] = {}
    for name, value in configured_secrets(settings).items():
        if value is None or value in KNOWN_SECRETS:
            generated[name] = new_secret()
    if settings.encryption_keys is None:
        generated["FRAMEIO_KIT_ENCRYPTION_KEYS"] = Fernet.generate_key().decode("ascii")
    # The ingress signs the jobs it queues and workers verify them: one key for the whole tree.
    if settings.job_signing_keys is None:
        generated["FRAMEIO_KIT_JOB_SIGNING_KEYS"] = new_secret()
    # Install-page sessions (App(install=True)) stay valid across the tree's processes and --reload restarts.
    if settings.session_secret is None:
        generated["FRAMEIO_KIT_SESSION_SECRET"] = new_secret()
    env = {"FRAMEIO_KIT_DEV": "1", "REDIS_URL": redis_url, "FRAMEIO_KIT_BROKER_URL": redis_url, **generated}
    return env, generated


def _announce(options: DevOptions, generated: dict[str, str], redis_url: str, secrets_file: Path) -> None:
    url = f"http://{options.host}:{options.port}/"
    lines = [
        "frameio-kit DEV MODE: not for production",
        f"  app        {options.app}",
        f"  ingress    {url}  (metrics at {url}metrics)",
        f"  broker     {redis_url}" + ("  (private redis-server, discarded at exit)" if not options.redis_url else ""),
        f"  worker     1 process, {_WORKER_CONCURRENCY} concurrent handlers",
    ]
    made = [name for name in ("WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET") if name in generated]
    if made:
        lines.append(f"  secrets    {', '.join(made)} generated for this session, in {secrets_file} (0600)")
    if not is_loopback_host(options.host):
        lines.append(f"  !! bound to {options.host}: other machines can reach this ingress !!")
    if "FRAMEIO_KIT_ENCRYPTION_KEYS" in generated:
        lines += [
            "",
            "  !! GENERATED A THROWAWAY TOKEN ENCRYPTION KEY (FRAMEIO_KIT_ENCRYPTION_KEYS) !!",
            "  !! Tokens stored in this session cannot be decrypted after it ends.        !!",
            "  !! Production refuses to start without FRAMEIO_KIT_ENCRYPTION_KEYS.        !!",
        ]
    # `send` finds this session's secrets in the file for its default URL, 127.0.0.1:8000.
    send = "frameio-kit send file.ready"
    if options.port != 8000:
        send += f" --url http://127.0.0.1:{options.port}/"
    lines += ["", "  send an event (from another terminal):", f"    {send}"]
    width = max(len(line) for line in lines) + 2
    bar = "=" * width
    print("\n".join([bar, *lines, bar]), file=sys.stderr, flush=True)


def _start_children(options: DevOptions) -> list[subprocess.Popen[bytes]]:
    node = f"frameio-kit-dev-{os.getpid()}@{socket.gethostname()}"
    commands = [
        cli_command("ingress", options.app, "--host", options.host, "--port", str(options.port)),
        cli_command("worker", options.app, "--concurrency", str(_WORKER_CONCURRENCY), "--hostname", node),
    ]
    # Own sessions: a terminal's Ctrl+C reaches only this supervisor, which stops them in order.
    die = dies_with_parent(_CHILD_DEATH_SIGNAL)
    return [subprocess.Popen(command, start_new_session=True, preexec_fn=die) for command in commands]  # noqa: S603


def _supervise(
    children: list[subprocess.Popen[bytes]], stop: threading.Event, changed: threading.Event | None
) -> subprocess.Popen[bytes] | None:
    """Wait for a stop signal (None), a code change (None) or a child's exit (that child)."""
    while not stop.wait(0.2):
        for child in children:
            if child.poll() is not None:
                return child
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


def _watch(stop: threading.Event) -> threading.Event:
    """Set the returned event whenever a .py file under the working directory changes."""
    from watchfiles import PythonFilter, watch

    changed = threading.Event()

    def loop() -> None:
        for _ in watch(Path.cwd(), watch_filter=PythonFilter(), stop_event=stop):
            changed.set()

    threading.Thread(target=loop, name="frameio-kit-reload", daemon=True).start()
    return changed
