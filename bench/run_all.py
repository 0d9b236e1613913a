"""Run every frameio-kit benchmark, print ratio tables and write docs/performance.md plus its PNG plots.

    /work/venv/bin/python bench/run_all.py            # full run (about 17 minutes on 2 shared cores)
    /work/venv/bin/python bench/run_all.py --quick    # one round, short soak (about 9 minutes)
    /work/venv/bin/python bench/run_all.py --report-only  # re-render docs from bench/results/perf.json

Everything runs on 127.0.0.1: a private redis-server on a free port, the ingress through the real CLI,
the comparison apps under plain uvicorn, workers through the real CLI (and stock `celery -A workers`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import payloads, report  # noqa: E402
from bench.procs import (  # noqa: E402
    PY,
    Server,
    WrkResult,
    cpu_seconds,
    rss_mb,
    start_kit_ingress,
    start_uvicorn,
    tree_of,
    wrk,
)
from frameio_kit.testing import RedisServer, Service, celery_command, cli_command, wait_until  # noqa: E402
from shared.jobs import routing  # noqa: E402
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob  # noqa: E402
from shared.jobs.kombu_redis import build_task_message  # noqa: E402
from shared.jobs.signing import JobSigner  # noqa: E402

QUEUE = "frameio-kit"
SOAK_CHUNK = 240
PACE_MS = 100


def queued(r: redis.Redis) -> int:
    """Messages waiting in the queue and its account shards (docs/tenants.md)."""
    return sum(int(r.llen(name)) for name in routing.physical_queues(QUEUE))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.redis_server = RedisServer(workdir)
        self.redis_server.start()
        self.r = redis.Redis.from_url(self.redis_server.url)
        self.results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FRAMEIO_KIT_")},
            "REDIS_URL": self.redis_server.url,
            "BENCH_RECORD_URL": self.redis_server.db_url(1),
            "FRAMEIO_APP": "bench.kit_app:app",
            "WEBHOOK_SECRET": payloads.WEBHOOK_SECRET,
            "CUSTOM_ACTION_SECRET": payloads.ACTION_SECRET,
            "FRAMEIO_KIT_JOB_SIGNING_KEYS": payloads.JOB_SIGNING_KEY,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }

        # Worker runs are fed pre-built messages: signed as the ingress signs them, or the workers refuse them.
        self.signer = JobSigner([payloads.JOB_SIGNING_KEY.encode()])

    def close(self) -> None:
        self.r.close()
        self.redis_server.stop()

    # -- ingress ---------------------------------------------------------------------------------

    def reqfile(self, name: str, per_thread: int, kind: str = "webhook", event_type: str | None = None) -> Path:
        prefix = self.workdir / name
        payloads.write_request_files(prefix, per_thread, 2, f"{name}{time.time_ns()}", kind, event_type)
        return prefix

    def measure(
        self, server: Server, reqs: Path, *, connections: int = 64, duration: int = 10, delay_ms: int | None = None
    ) -> dict[str, Any]:
        self.r.flushall()
        wrk(server.url, reqs, connections=connections, duration=2, delay_ms=delay_ms)
        self.r.flushall()
        res = wrk(
            server.url,
            reqs,
            connections=connections,
            duration=duration,
            server_pid=server.service.pid,
            delay_ms=delay_ms,
        )
        out = res.as_dict()
        out["queued"] = queued(self.r)
        return out

    def ingress(self) -> None:
        a = self.args
        servers: dict[str, Server] = {}
        env_w = {**self.env, "FRAMEIO_KIT_LOG_LEVEL": a.ingress_log_level}
        log("starting ingress servers")
        servers["bare_w1"] = start_uvicorn("bare_w1", "bench.apps:bare", 1, self.env, self.workdir)
        servers["kit_w1"] = start_kit_ingress("kit_w1", 1, env_w, self.workdir)
        quiet = {**env_w, "FRAMEIO_KIT_LOG_LEVEL": "WARNING"}
        servers["kitq_w1"] = start_kit_ingress("kitq_w1", 1, quiet, self.workdir)
        servers["obvious_w1"] = start_uvicorn("obvious_w1", "bench.apps:obvious", 1, self.env, self.workdir)
        servers["inline_w1"] = start_uvicorn("inline_w1", "bench.apps:inline", 1, self.env, self.workdir)
        servers["bare_w2"] = start_uvicorn("bare_w2", "bench.apps:bare", 2, self.env, self.workdir)
        # Two processes with custom actions need shared action state (memory is refused).
        servers["kit_w2"] = start_kit_ingress("kit_w2", 2, {**env_w, "FRAMEIO_KIT_ACTION_STATE": "redis"}, self.workdir)
        time.sleep(2)
        idle = {name: rss_mb(s.service.pid) for name, s in servers.items()}
        self.results["idle_rss_mb"] = {
            "frameio-kit ingress `--workers 1`": idle["kit_w1"],
            "bare Starlette (1 worker)": idle["bare_w1"],
        }
        runs: list[dict[str, Any]] = []
        per_thread = a.distinct // 2
        try:
            for rnd in range(a.rounds):
                log(f"ingress round {rnd + 1}/{a.rounds}: signing {a.distinct} distinct requests per set")
                hooks = self.reqfile("hooks", per_thread)
                slow = self.reqfile("slow", per_thread, event_type="bench.sleep1s")
                actions = self.reqfile("actions", per_thread, kind="action")
                plan: list[tuple[str, str, Path]] = [
                    ("bare_w1", "bare_w1", hooks),
                    ("kit_w1", "kit_w1", hooks),
                    ("kitq_w1", "kitq_w1", hooks),
                    ("obvious_w1", "obvious_w1", hooks),
                    ("bare_w2", "bare_w2", hooks),
                    ("kit_w2", "kit_w2", hooks),
                    ("inline_1s", "inline_w1", slow),
                    ("kit_1s", "kit_w1", slow),
                    ("kit_action", "kit_w1", actions),
                ]
                # Paced: 64 connections, each sending one request per PACE_MS (wrk's delay()): latency at a
                # realistic rate rather than queueing at saturation.
                plan += [
                    ("bare_paced", "bare_w1", hooks),
                    ("kit_paced", "kit_w1", hooks),
                    ("action_paced", "kit_w1", actions),
                ]
                for label, server, reqs in plan:
                    paced = label.endswith("_paced")
                    res = self.measure(
                        servers[server], reqs, duration=5 if paced else 10, delay_ms=PACE_MS if paced else None
                    )
                    res.update(label=label, round=rnd)
                    runs.append(res)
                    log(
                        f"  {label:11s} {res['rps']:9.0f} req/s  p50 {res['p50_ms']:7.1f} ms  "
                        f"p99 {res['p99_ms']:7.1f} ms  cpu {res['cpu_us']:5.0f} us/req  non2xx {res['non2xx']}  "
                        f"queued {res['queued']}"
                    )
            self.results["ingress_runs"] = runs
            self.verify_messages(servers["kit_w1"], hooks)
            if a.sweep:
                self.sweep(servers, hooks)
        finally:
            for s in servers.values():
                s.service.stop()

    def verify_messages(self, server: Server, reqs: Path) -> None:
        """Load the kit ingress, then let a stock `celery -A workers worker` drain a sample of what it queued."""
        log("verifying queued messages with a stock celery worker")
        res = self.measure(server, reqs, duration=5)
        acked = res["requests"] - res["non2xx"]
        queued = res["queued"]
        sample = min(self.args.sample, queued)
        keep = sample  # the queue and its account shards (docs/tenants.md) together keep `sample` messages
        for name in routing.physical_queues(QUEUE):
            kept = min(int(self.r.llen(name)), keep)
            if kept:
                self.r.ltrim(name, 0, kept - 1)
            else:
                self.r.delete(name)
            keep -= kept
        rec = redis.Redis.from_url(self.redis_server.db_url(1))
        rec.delete("bench:done")
        argv = celery_command(
            "worker", "-P", "threads", "-c", "16", "-l", "INFO", "--without-mingle", "--without-gossip"
        )
        worker = Service("stock-worker", argv, self.env, self.workdir)
        try:
            worker.wait_for_output(r" ready\.", timeout=60)
            wait_until(lambda: int(rec.get("bench:done") or 0) >= sample, timeout=60, what="sample drained")
        finally:
            worker.stop()
        done = int(rec.get("bench:done") or 0)
        rec.close()
        self.results["verify"] = {"acked_2xx": acked, "queued": queued, "sample": sample, "handled": done}
        log(f"  acked {acked}, in the queue {queued}, stock worker handled {done}/{sample}")

    def sweep(self, servers: dict[str, Server], _: Path) -> None:
        log("connection sweep (bare / kit / obvious, 1 worker)")
        rows = []
        hooks = self.reqfile("sweep", self.args.distinct // 2)
        for conns in (8, 64, 256):
            for label in ("bare_w1", "kit_w1", "obvious_w1"):
                res = self.measure(servers[label], hooks, connections=conns, duration=self.args.sweep_duration)
                res.update(label=label, connections=conns)
                rows.append(res)
                log(f"  c={conns:<4d}{label:11s} {res['rps']:9.0f} req/s  p99 {res['p99_ms']:7.1f} ms")
        self.results["sweep"] = rows

    # -- workers ---------------------------------------------------------------------------------

    def job_messages(self, n: int, event_type: str, task: str = HANDLE_WEBHOOK) -> list[bytes]:
        tag = f"w{time.time_ns()}"
        ordered_by = self.env.get("BENCH_ORDERED_BY") if task == HANDLE_WEBHOOK else None
        out = []
        for i in range(n):
            body = payloads.webhook_body(i, tag, event_type)
            job = WebhookJob.for_delivery(event_type, f"{tag}-{i}", body, int(time.time()))
            kwargs = job.model_dump(exclude_none=True)
            if ordered_by:  # bench/kit_app.py's BENCH_ORDERED_BY: each event its own key (the uncontended cost)
                kwargs["order_key"] = routing.order_key(ordered_by, SimpleNamespace(resource_id=job.resource_id))
            out.append(build_task_message(task, kwargs, job.describe(), QUEUE, self.signer))
        return out

    def sequence(self, env: dict[str, str], messages: list[bytes]) -> None:
        """With BENCH_ORDERED_BY, each message's sequence number as the ingress gives it (enqueue.lua): every
        event is its key's first, so the workers' gate lets it run and its completion hands the key on."""
        from shared.jobs.kombu_redis import task_of
        from shared.redis_keys import order_state_key

        if not env.get("BENCH_ORDERED_BY"):
            return
        pipe = self.r.pipeline(transaction=False)
        for message in messages:
            _, kwargs = task_of(message)
            if "order_key" in kwargs:
                pipe.hset(order_state_key(kwargs["order_key"]), mapping={"last": 1, kwargs["idempotency_key"]: 1})
        pipe.execute()

    def record_history(self, env: dict[str, str], messages: list[bytes]) -> None:
        """The event history's records of `messages`, written as the ingress writes them (record.lua), unless
        the run has it off (FRAMEIO_KIT_EVENT_MAX=0): the workers' status writes then land on real records."""
        from shared.events.history import RECORD_LUA, EventWriter
        from shared.jobs.kombu_redis import task_of
        from shared.settings import Settings

        writer = EventWriter(Settings(event_max=int(env.get("FRAMEIO_KIT_EVENT_MAX", "100000"))))
        if not writer.enabled:
            return
        items = []
        for message in messages:
            task, kwargs = task_of(message)
            item = writer.queued(task, kwargs, None, QUEUE, message)
            if item is not None:
                items.append(item)
        for start in range(0, len(items), 256):
            keys, args = writer.script_call(items[start : start + 256])
            self.r.eval(RECORD_LUA, len(keys), *keys, *args)

    def drain(
        self, label: str, argv: list[str], processes: int, messages: list[bytes], app: str | None = None
    ) -> dict[str, Any]:
        """Start `processes` workers on an empty queue, push `messages`, time until all are acknowledged."""
        self.r.flushall()
        env = {**self.env, "FRAMEIO_KIT_LOG_LEVEL": self.args.worker_log_level}
        if app:
            env["FRAMEIO_APP"] = app
        workers = [Service(f"{label}-{i}", argv, env, self.workdir, cwd=tree_of(env)) for i in range(processes)]
        try:
            for w in workers:
                w.wait_for_output(r" ready\.", timeout=90)
            time.sleep(1.0)
            self.record_history(env, messages)  # as the ingress would have: the workers then update them
            self.sequence(env, messages)
            idle = rss_mb(workers[0].pid)
            cpu0 = sum(cpu_seconds(w.pid) for w in workers)
            t0 = time.perf_counter()
            pipe = self.r.pipeline(transaction=False)
            for i, m in enumerate(messages):
                pipe.lpush(QUEUE, m)
                if i % 500 == 499:
                    pipe.execute()
            pipe.execute()
            deadline = t0 + 300

            def drained() -> bool:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{label}: not drained in time")
                return queued(self.r) == 0 and self.r.hlen("unacked") == 0

            while not drained():
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu_us = (sum(cpu_seconds(w.pid) for w in workers) - cpu0) / len(messages) * 1e6
            busy = rss_mb(workers[0].pid)
        finally:
            for w in workers:
                w.stop()
        rate = len(messages) / elapsed
        log(
            f"  {label:28s} {processes} proc  {len(messages):6d} tasks  {rate:8.1f} tasks/s  "
            f"cpu {cpu_us:5.0f} us/task  rss idle {idle:.0f} MB -> {busy:.0f} MB"
        )
        return {
            "label": label,
            "processes": processes,
            "tasks": len(messages),
            "rate": rate,
            "seconds": elapsed,
            "rss_idle_mb": idle,
            "rss_after_mb": busy,
            "cpu_us": cpu_us,
        }

    def workers(self) -> None:
        a = self.args
        runs: list[dict[str, Any]] = []
        c = a.concurrency

        def kit(pool: str, conc: int) -> list[str]:
            return cli_command("worker", "bench.kit_app:app", "--pool", pool, "--concurrency", str(conc))

        bare = [
            PY,
            "-m",
            "celery",
            "-A",
            "bench.celery_bare",
            "worker",
            "-P",
            "threads",
            "-c",
            "8",
            "-E",
            "-l",
            a.worker_log_level,
            "--without-mingle",
            "--without-gossip",
        ]
        for rnd in range(a.rounds):
            log(f"worker round {rnd + 1}/{a.rounds}: no-op overhead (threads pool, -c 8)")
            for label, argv, task in (("bare_noop", bare, "bench.noop"), ("kit_noop", kit("threads", 8), None)):
                msgs = self.job_messages(a.noop_tasks, "bench.noop", task or HANDLE_WEBHOOK)
                runs.append({**self.drain(label, argv, 1, msgs), "round": rnd})
        log("50 ms async handler: one process, pools and concurrency")
        for pool, conc, n in (
            ("prefork", 1, 60),
            ("prefork", 2, 120),
            ("threads", 8, 800),
            ("threads", c, 2000),
            ("threads", 128, 3000),
        ):
            msgs = self.job_messages(n, "bench.sleep50")
            runs.append(
                {
                    **self.drain(f"kit_sleep50_{pool}_c{conc}", kit(pool, conc), 1, msgs),
                    "pool": pool,
                    "concurrency": conc,
                }
            )
        log("50 ms async handler: scaling 1 -> 3 worker processes")
        for conc in (8, c):
            for procs in (1, 2, 3):
                n = min(procs * conc * 20 * 4, 6000)
                msgs = self.job_messages(n, "bench.sleep50")
                runs.append(
                    {
                        **self.drain(f"kit_scale_c{conc}", kit("threads", conc), procs, msgs),
                        "pool": "threads",
                        "concurrency": conc,
                    }
                )
        self.results["worker_runs"] = runs

    # -- memory soak -----------------------------------------------------------------------------

    def soak(self) -> None:
        seconds = self.args.soak
        rate = self.args.soak_rate
        log(f"memory soak: {seconds}s of paced mixed traffic (webhooks + Form actions) through ingress and worker")
        self.r.flushall()
        env = {**self.env, "FRAMEIO_KIT_LOG_LEVEL": "WARNING", "FRAMEIO_KIT_ACTION_STATE_MAX": "2000"}
        ingress = start_kit_ingress("soak-ingress", 1, env, self.workdir)
        worker = Service(
            "soak-worker",
            cli_command("worker", "bench.kit_app:app", "--concurrency", "32", "--loglevel", "INFO"),
            env,
            self.workdir,
        )
        samples: list[dict[str, float]] = []
        rec = redis.Redis.from_url(self.redis_server.db_url(1))
        try:
            worker.wait_for_output(r" ready\.", timeout=90)
            time.sleep(1)
            idle = {"ingress": rss_mb(ingress.service.pid), "worker": rss_mb(worker.pid)}
            connections = max(2, rate * PACE_MS // 1000)
            results: list[WrkResult] = []
            started = time.perf_counter()
            # Signatures are only accepted within 300 s of their timestamp: sign a fresh set per chunk.
            while (remaining := seconds - int(time.perf_counter() - started)) > 5:
                chunk = min(remaining, SOAK_CHUNK)
                reqs = self.reqfile("soak", int(chunk * rate * 0.6) + 1000, kind="mixed")
                load = threading.Thread(
                    target=lambda reqs=reqs, chunk=chunk: results.append(
                        wrk(ingress.url, reqs, connections=connections, duration=chunk, delay_ms=PACE_MS)
                    )
                )
                load.start()
                while load.is_alive():
                    samples.append(
                        {
                            "t": time.perf_counter() - started,
                            "ingress": rss_mb(ingress.service.pid),
                            "worker": rss_mb(worker.pid),
                        }
                    )
                    load.join(timeout=max(seconds / 60, 1))
            res = WrkResult(
                rps=statistics.median(r.rps for r in results),
                requests=sum(r.requests for r in results),
                p50_ms=max(r.p50_ms for r in results),
                p90_ms=max(r.p90_ms for r in results),
                p99_ms=max(r.p99_ms for r in results),
                non2xx=sum(r.non2xx for r in results),
                errors=sum(r.errors for r in results),
            )
            wait_until(
                lambda: queued(self.r) == 0 and self.r.hlen("unacked") == 0, timeout=120, what="soak queue drained"
            )
            samples.append(
                {
                    "t": time.perf_counter() - started,
                    "ingress": rss_mb(ingress.service.pid),
                    "worker": rss_mb(worker.pid),
                }
            )
            handled = int(rec.get("bench:done") or 0)
        finally:
            rec.close()
            worker.stop()
            ingress.service.stop()
        self.results["soak"] = {
            "seconds": seconds,
            "idle": idle,
            "samples": samples,
            "requests": res.requests,
            "rps": res.rps,
            "errors": res.non2xx + res.errors,
            "p99_ms": res.p99_ms,
            "handled": handled,
        }
        log(
            f"  {res.requests} requests ({res.rps:.0f}/s, p99 {res.p99_ms:.1f} ms, {res.non2xx + res.errors} errors), "
            f"{handled} webhooks handled; RSS ingress {samples[0]['ingress']:.0f} -> {samples[-1]['ingress']:.0f} MB, "
            f"worker {samples[0]['worker']:.0f} -> {samples[-1]['worker']:.0f} MB"
        )


def machine() -> dict[str, str]:
    import celery
    import psutil
    import redis as redis_mod
    import starlette
    import uvicorn

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": f"starlette {starlette.__version__}, uvicorn {uvicorn.__version__}, celery {celery.__version__}, "
        f"redis-py {redis_mod.__version__}",
        "load_avg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    p.add_argument("--distinct", type=int, default=200_000, help="distinct signed requests per set (both threads)")
    p.add_argument("--soak", type=int, default=90, help="seconds of the memory soak (the issue asks 600)")
    p.add_argument("--soak-rate", type=int, default=300, help="requests/s during the soak")
    p.add_argument("--noop-tasks", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=32, help="the threads-pool concurrency under test")
    p.add_argument("--sample", type=int, default=300, help="queued messages a stock worker must handle")
    p.add_argument("--sweep-duration", type=int, default=5)
    p.add_argument("--no-sweep", dest="sweep", action="store_false")
    p.add_argument("--ingress-log-level", default="INFO")
    p.add_argument("--worker-log-level", default="INFO")
    p.add_argument("--only", choices=["ingress", "workers", "soak"], action="append")
    p.add_argument("--quick", action="store_true", help="1 round, 100k distinct requests, 30 s soak")
    p.add_argument("--report-only", action="store_true", help="re-render the doc and plots from --json")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="where performance.md and the PNGs go")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "perf.json")
    args = p.parse_args(argv)
    if args.report_only:
        print(report.render(json.loads(args.json.read_text()), args.out))
        return 0
    if args.quick:
        args.rounds, args.distinct, args.soak = 1, 100_000, 30
    steps: dict[str, Callable[[Bench], None]] = {"ingress": Bench.ingress, "workers": Bench.workers, "soak": Bench.soak}
    chosen = args.only or list(steps)
    with tempfile.TemporaryDirectory(prefix="frameio-kit-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        bench.results["machine"] = machine()
        bench.results["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        started = time.perf_counter()
        try:
            for name in chosen:
                steps[name](bench)
        finally:
            bench.close()
        bench.results["machine"]["load_avg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        bench.results["wall_seconds"] = round(time.perf_counter() - started)
    if args.only and args.json.exists():
        # Merge one section into the last full run: keep that run's header (machine, start, options).
        previous = json.loads(args.json.read_text())
        header = {"machine", "args", "started", "wall_seconds"}
        previous.update({k: v for k, v in bench.results.items() if k not in header})
        if "soak" in chosen:
            previous.setdefault("args", {}).update(soak=args.soak, soak_rate=args.soak_rate)
        bench.results = previous
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(bench.results, indent=1))
    text = report.render(bench.results, args.out)
    print(text)
    log(f"wrote {args.json}, {args.out / 'performance.md'} and plots in {args.out / 'img'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
