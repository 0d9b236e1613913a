"""A/B of the ingress between checkouts, against bare Starlette in the same round.

    python bench/ab.py --checkout before=/path/to/old --checkout after=. --rounds 3
    python bench/ab.py --checkout before=/path/to/old --checkout after=. --section worker
    python bench/ab.py --checkout on=. --checkout off=. --env off:FRAMEIO_KIT_EVENT_MAX=0 --section worker

Each checkout's ingress (or worker) runs from its own tree (PYTHONPATH first), with this
interpreter's packages. Rounds alternate over every server, so drift on the shared machine hits all
of them alike; each ratio is to bare Starlette (or a bare Celery no-op worker, threads -c 8) in the
same round. Nothing is written; the table is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import payloads  # noqa: E402
from bench.procs import Server, start_kit_ingress, start_uvicorn, wrk  # noqa: E402
from frameio_kit.testing import RedisServer  # noqa: E402


def _from_tree(path: str) -> dict[str, str]:
    """Environment that makes a process import the code of the checkout at `path`: first on the
    path, and no current directory in front of it (`python -m` would put the caller's there)."""
    return {"PYTHONPATH": str(Path(path).resolve()), "PYTHONSAFEPATH": "1"}


def _extra_env(pairs: list[str], checkouts: dict[str, str]) -> dict[str, dict[str, str]]:
    """`--env NAME:KEY=VALUE` per checkout: the same tree run with a setting on and off."""
    extra: dict[str, dict[str, str]] = {name: {} for name in checkouts}
    for pair in pairs:
        name, _, setting = pair.partition(":")
        key, eq, value = setting.partition("=")
        if name not in extra or not eq:
            raise SystemExit(f"--env {pair!r}: expected NAME:KEY=VALUE with NAME one of {', '.join(extra)}")
        extra[name][key] = value
    return extra


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkout", action="append", default=[], help="NAME=PATH (repeat); default: this tree")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--kind", choices=["webhook", "action"], default="webhook")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--section", choices=["ingress", "worker"], default="ingress")
    p.add_argument("--tasks", type=int, default=4000, help="no-op tasks per worker run")
    p.add_argument(
        "--env", action="append", default=[], help="NAME:KEY=VALUE (repeat): a setting for one checkout only"
    )
    a = p.parse_args(argv)
    checkouts = dict(c.split("=", 1) for c in a.checkout) or {"this": str(ROOT)}
    a.extra = _extra_env(a.env, checkouts)
    if a.section == "worker":
        return _workers(a, checkouts)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rs = RedisServer(work)
        rs.start()
        r = redis.Redis.from_url(rs.url)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FRAMEIO_KIT_")},
            "REDIS_URL": rs.url,
            "BENCH_RECORD_URL": rs.db_url(1),
            "WEBHOOK_SECRET": payloads.WEBHOOK_SECRET,
            "CUSTOM_ACTION_SECRET": payloads.ACTION_SECRET,
            "FRAMEIO_KIT_JOB_SIGNING_KEYS": payloads.JOB_SIGNING_KEY,
            "FRAMEIO_KIT_LOG_LEVEL": a.log_level,
            "PYTHONUNBUFFERED": "1",
        }
        if a.workers > 1:
            base["FRAMEIO_KIT_ACTION_STATE"] = "redis"
        servers: dict[str, Server] = {
            "bare": start_uvicorn("bare", "bench.apps:bare", a.workers, {**base, "PYTHONPATH": str(ROOT)}, work)
        }
        for name, path in checkouts.items():
            env = {**base, **_from_tree(path), **a.extra[name]}
            servers[name] = start_kit_ingress(name, a.workers, env, work)
        rows: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in servers}
        try:
            for rnd in range(a.rounds):
                reqs = work / f"reqs{rnd}"
                payloads.write_request_files(reqs, 100_000, 2, f"ab{rnd}{time.time_ns()}", a.kind, None)
                bare_rps = 0.0
                kits = list(servers)[1:]
                shift = rnd % len(kits)
                # Bare first (the ratio's base), then the checkouts in a rotated order: drift and
                # order effects fall on each of them in turn.
                for name in ["bare", *kits[shift:], *kits[:shift]]:
                    server = servers[name]
                    r.flushall()
                    wrk(server.url, reqs, connections=a.connections, duration=2)
                    r.flushall()
                    res = wrk(
                        server.url, reqs, connections=a.connections, duration=a.duration, server_pid=server.service.pid
                    )
                    if res.non2xx or res.errors:
                        print(f"  {name}: {res.non2xx} non-2xx, {res.errors} errors", file=sys.stderr)
                    bare_rps = res.rps if name == "bare" else bare_rps
                    ratio = res.rps / bare_rps
                    rows[name].append((res.rps, res.cpu_us, res.p99_ms, ratio))
                    print(
                        f"round {rnd + 1} {name:10s} {res.rps:8.0f} req/s  cpu {res.cpu_us:6.1f} us/req  "
                        f"p99 {res.p99_ms:6.1f} ms  {ratio:6.1%} of bare",
                        flush=True,
                    )
        finally:
            for s in servers.values():
                s.service.stop()
            r.close()
            rs.stop()
    print(f"\n{'server':10s} {'req/s':>8s} {'cpu us/req':>11s} {'p99 ms':>8s} {'% of bare':>10s}  (median [min-max])")
    for name, vals in rows.items():
        rps, cpu, p99, ratio = (statistics.median(v[i] for v in vals) for i in range(4))
        lo, hi = min(v[3] for v in vals), max(v[3] for v in vals)
        print(f"{name:10s} {rps:8.0f} {cpu:11.1f} {p99:8.1f} {ratio:9.1%}  [{lo:.1%}-{hi:.1%}]")
    return 0


def _workers(a: argparse.Namespace, checkouts: dict[str, str]) -> int:
    """Worker CPU per no-op task, each checkout's kit worker against a bare Celery one."""
    from bench.procs import PY, cli_command
    from bench.run_all import Bench
    from shared.jobs.contract import HANDLE_WEBHOOK

    bare = [PY, "-m", "celery", "-A", "bench.celery_bare", "worker", "-P", "threads", "-c", "8", "-E"]
    bare += ["-l", a.log_level, "--without-mingle", "--without-gossip"]
    kit = cli_command("worker", "bench.kit_app:app", "--pool", "threads", "--concurrency", "8")
    rows: dict[str, list[tuple[float, float]]] = {"bare": [], **{n: [] for n in checkouts}}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(argparse.Namespace(worker_log_level=a.log_level), Path(tmp))
        try:
            for rnd in range(a.rounds):
                names = list(checkouts)
                shift = rnd % len(names)
                bare_cpu = 0.0
                for name in ["bare", *names[shift:], *names[:shift]]:
                    for settings in a.extra.values():
                        for key in settings:
                            bench.env.pop(key, None)
                    bench.env.update(_from_tree(checkouts.get(name, str(ROOT))))
                    bench.env.update(a.extra.get(name, {}))
                    task = "bench.noop" if name == "bare" else HANDLE_WEBHOOK
                    res = bench.drain(
                        name, bare if name == "bare" else kit, 1, bench.job_messages(a.tasks, "bench.noop", task)
                    )
                    bare_cpu = res["cpu_us"] if name == "bare" else bare_cpu
                    rows[name].append((res["cpu_us"], res["cpu_us"] / bare_cpu))
        finally:
            bench.close()
    print(f"\n{'worker':10s} {'cpu us/task':>12s} {'x bare':>8s}  (median [min-max])")
    for name, vals in rows.items():
        cpu, ratio = (statistics.median(v[i] for v in vals) for i in range(2))
        print(f"{name:10s} {cpu:12.0f} {ratio:7.2f}x  [{min(v[1] for v in vals):.2f}-{max(v[1] for v in vals):.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
