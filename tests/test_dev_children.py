"""`frameio-kit dev` takes its whole process tree with it however it ends (issue 20): a SIGKILL leaves no orphan
holding the port (Linux parent-death signals, frameio_kit/parent_death.py), a hang-up (a closed terminal) stops it
in order, and a port that something else holds is named in one line with how to free it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from frameio_kit import parent_death
from tests.helpers import ROOT, Service, cli_command, free_port, wait_until

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux-only")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running; a zombie has released everything, and is waiting only to be reaped."""
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _port_is_free(port: int) -> bool:
    """True when a new ingress could bind the port (uvicorn sets SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.e2e
@pytest.mark.parametrize(
    "sig",
    [pytest.param(signal.SIGKILL, marks=linux_only, id="SIGKILL"), pytest.param(signal.SIGHUP, id="SIGHUP")],
)
def test_dev_leaves_no_process_and_a_free_port_behind_when_killed_or_hung_up(
    base_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    port = free_port()
    env = {**base_env, "FRAMEIO_KIT_DEV_SECRETS_FILE": str(tmp_path / "home" / "dev-secrets.json")}
    dev = Service("dev", cli_command("dev", "examples/review_bot.py", "--port", str(port)), env, tmp_path, cwd=ROOT)
    descendants: list[psutil.Process] = []
    try:
        dev.wait_for_output(r" ready\.", timeout=60)  # the worker's line: every child is up
        dev.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        broker_port = int(re.search(r"broker\s+redis://127\.0\.0\.1:(\d+)/0", dev.output()).group(1))  # type: ignore[union-attr]
        descendants = psutil.Process(dev.pid).children(recursive=True)
        names = " ".join(" ".join(process.cmdline()) for process in descendants)
        assert "redis-server" in names and " ingress " in names and " worker " in names

        os.kill(dev.pid, sig)

        def all_gone() -> bool:
            return (
                dev.proc.poll() is not None
                and not _alive(descendants)
                and _port_is_free(port)
                and _port_is_free(broker_port)
            )

        wait_until(all_gone, timeout=5, what=f"dev's children to die and free port {port} after {sig.name}")
        if sig == signal.SIGHUP:
            assert dev.proc.returncode == 0, dev.output()[-3000:]
    finally:
        for process in _alive(descendants):
            process.kill()
        dev.stop()


def test_dev_names_the_taken_port_and_how_to_find_what_holds_it(base_env: dict[str, str], tmp_path: Path) -> None:
    env = {**base_env, "FRAMEIO_KIT_DEV_SECRETS_FILE": str(tmp_path / "home" / "dev-secrets.json")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            cli_command("dev", "examples/review_bot.py", "--port", str(port)),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert result.returncode == 2
    hint = [line for line in result.stderr.splitlines() if f"port {port}" in line]
    assert len(hint) == 1, result.stderr
    assert "already in use" in hint[0] and f"lsof -nP -iTCP:{port} -sTCP:LISTEN" in hint[0]
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr


@linux_only
def test_a_child_armed_with_the_parent_death_signal_dies_when_its_parent_is_killed() -> None:
    # A parent that starts `sleep` armed with SIGTERM, reports its pid, then waits to be killed.
    parent_code = textwrap.dedent(
        """
        import signal, subprocess, sys
        from frameio_kit.parent_death import dies_with_parent
        child = subprocess.Popen(["sleep", "60"], preexec_fn=dies_with_parent(signal.SIGTERM))
        print(child.pid, flush=True)
        sys.stdin.read()
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait(timeout=5)
        wait_until(lambda: not _alive([child]), timeout=5, what="the armed child to die with its parent")
    finally:
        parent.kill()
        parent.wait(timeout=5)


@linux_only
def test_a_child_whose_parent_died_before_it_was_armed_exits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the parent had died between fork and prctl: the child's parent is not the one that armed it.
    monkeypatch.setattr(os, "getpid", lambda: 1)
    arm = parent_death.dies_with_parent(signal.SIGTERM)
    monkeypatch.undo()
    child = subprocess.Popen(["sleep", "60"], preexec_fn=arm)
    try:
        assert child.wait(timeout=5) == 1
    finally:
        child.kill()
        child.wait()


def test_dev_falls_back_to_plain_children_where_there_is_no_prctl() -> None:
    assert parent_death._load_prctl("darwin") is None
    assert parent_death._load_prctl("win32") is None
    assert (parent_death._load_prctl("linux") is not None) is sys.platform.startswith("linux")
