"""Process helpers for the benchmarks: servers started by pid, wrk runs parsed, CPU and RSS read with psutil."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from frameio_kit.testing import Service, cli_command, free_port, wait_until

PY = sys.executable
WRK = "wrk"
LUA = str(Path(__file__).with_name("replay.lua"))
ROOT = Path(__file__).resolve().parent.parent


def tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(pid: int, children_only: bool = False) -> float:
    procs = tree(pid)
    if children_only and len(procs) > 1:
        procs = procs[1:]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Server:
    name: str
    service: Service
    port: int
    workers: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.service.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.service.output()[-3000:]}")
            workers_up = self.workers == 1 or len(tree(self.service.pid)) >= self.workers + 1
            return workers_up and _accepts(self.port)

        wait_until(ready, timeout=60, interval=0.1, what=f"{self.name} on port {self.port}")
        time.sleep(0.5)


def start_uvicorn(name: str, target: str, workers: int, env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    argv = [
        PY,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = Server(name, Service(name, argv, env, logdir), port, workers)
    server.wait_ready()
    return server


def tree_of(env: dict[str, str]) -> Path:
    """The checkout a process runs from (its PYTHONPATH, as bench/ab.py sets it): its working directory too,
    or the CLI would find this tree's `shared/` beside the checkout's and refuse the collision."""
    return Path(env.get("PYTHONPATH") or ROOT)


def start_kit_ingress(name: str, workers: int, env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    argv = cli_command("ingress", "bench.kit_app:app", "--port", str(port), "--workers", str(workers))
    server = Server(name, Service(name, argv, env, logdir, cwd=tree_of(env)), port, workers)
    server.wait_ready()
    return server


@dataclass
class WrkResult:
    rps: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    cpu_us: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if m is None:
        raise ValueError(value)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]
    return float(m.group(1)) * scale


def wrk(
    url: str,
    reqfile: Path,
    *,
    connections: int = 64,
    duration: int = 10,
    threads: int = 2,
    timeout: str = "10s",
    server_pid: int | None = None,
    delay_ms: int | None = None,
) -> WrkResult:
    argv = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        f"--timeout={timeout}",
        "-s",
        LUA,
        url,
        "--",
        str(reqfile),
    ]
    cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    env = {**os.environ, "WRK_DELAY_MS": str(delay_ms)} if delay_ms else None
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 120, check=True, cwd=ROOT, env=env
    ).stdout
    cpu1 = cpu_seconds(server_pid) if server_pid else 0.0
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        requests=requests,
        p50_ms=pct["50"],
        p90_ms=pct["90"],
        p99_ms=pct["99"],
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(x) for x in errors.groups()) if errors else 0,
        cpu_us=(cpu1 - cpu0) / max(requests, 1) * 1e6 if server_pid else 0.0,
    )
