"""Soak test, on demand (not part of the test run): a steady webhook stream while workers are killed
and restarted at random and the broker Redis (append-only persistence on) is restarted once.

    python bench/soak.py --duration 120 --rate 20

Prints events sent, acknowledged, completed, completed twice, dead-lettered and lost. Everything
runs on 127.0.0.1: its own redis-servers, the ingress and the workers, started through the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.payloads import WEBHOOK_SECRET
from frameio_kit.testing import RedisServer, Service, cli_command, free_port, sign_request, wait_until, webhook_payload
from shared.jobs.dead_letters import DeadLetterStore

APP = "tests.apps.reliability:app"


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.broker = RedisServer(workdir / "broker", persistent=True)
        self.recorder = RedisServer(workdir / "records")
        self.workers: list[Service] = []
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.refused = Counter[str]()
        self.kills = 0
        self.redis_restarts = 0
        self.stop_chaos = threading.Event()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEIO_KIT_")}
        env.update(
            {
                "REDIS_URL": self.broker.url,
                "TEST_RECORD_URL": self.recorder.db_url(1),
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "CUSTOM_ACTION_SECRET": "soak-action-secret",
                "FRAMEIO_KIT_VISIBILITY_TIMEOUT": str(self.args.visibility_timeout),
                "FRAMEIO_KIT_RETRY_BACKOFF": "0.2",
                "FRAMEIO_KIT_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start_worker(self) -> Service:
        svc = Service("worker", cli_command("worker", APP, "--concurrency", "8"), self.env(), self.workdir)
        svc.wait_for_output(r" ready\.", timeout=60)
        return svc

    def run(self) -> dict[str, int]:
        for server in (self.broker, self.recorder):
            server.workdir.mkdir()
            server.start()
        port = free_port()
        ingress = Service("ingress", cli_command("ingress", APP, "--port", str(port)), self.env(), self.workdir)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(url), timeout=30, what="ingress")
        self.workers = [self.start_worker() for _ in range(self.args.workers)]
        chaos = threading.Thread(target=self.chaos, daemon=True)
        try:
            chaos.start()
            sent = self.send(url)
            self.stop_chaos.set()
            chaos.join()
            counts = self.drain(sent)
        finally:
            self.stop_chaos.set()
            ingress.stop()
            for worker in self.workers:
                worker.stop()
            self.broker.stop()
            self.recorder.stop()
        return counts

    def send(self, url: str) -> list[str]:
        """A steady stream at --rate; each event is retried like Frame.io does until a 2xx."""
        resources: list[str] = []
        deadline = time.monotonic() + self.args.duration
        with httpx.Client(timeout=6.0) as client, ThreadPoolExecutor(max_workers=32) as pool:
            n = 0
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                resource = f"soak-{n}"
                extra: dict[str, object] = {"test_sleep": round(self.rng.uniform(0.02, 0.6), 3)}
                if self.rng.random() < 0.05:
                    extra["test_fail_times"] = 1
                resources.append(resource)
                pool.submit(self.deliver, client, url, resource, extra)
                n += 1
                next_at += 1 / self.args.rate
                time.sleep(max(0.0, next_at - time.monotonic()))
        return resources

    def deliver(self, client: httpx.Client, url: str, resource: str, extra: dict[str, object]) -> None:
        body, headers = sign_request(webhook_payload(resource_id=resource, **extra), WEBHOOK_SECRET)
        for attempt in range(6):
            try:
                status = client.post(url + "/", content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                status = 0
                self.refused[type(exc).__name__] += 1
            if 200 <= status < 300:
                with self.lock:
                    self.acknowledged.add(resource)
                return
            self.refused[str(status)] += 1
            time.sleep(min(0.5 * 2**attempt, 8))

    def chaos(self) -> None:
        """Kill -9 (or SIGTERM, a graceful stop) a random worker every few seconds and start a new
        one; restart the broker Redis once, half-way through."""
        restart_at = time.monotonic() + self.args.duration / 2
        while not self.stop_chaos.wait(self.rng.uniform(4, 10)):
            if self.redis_restarts == 0 and time.monotonic() >= restart_at:
                self.broker.stop()
                time.sleep(1.0)
                self.broker.start()
                self.redis_restarts += 1
                continue
            victim = self.rng.choice(self.workers)
            victim.signal(signal.SIGKILL if self.rng.random() < 0.75 else signal.SIGTERM)
            victim.proc.wait(timeout=30)
            self.kills += 1
            self.workers = [w for w in self.workers if w is not victim]
            self.workers.append(self.start_worker())

    def diagnose(self, lost: set[str], started: Counter[str]) -> None:
        broker = redis.Redis.from_url(self.broker.url)
        for resource in sorted(lost):
            print(f"lost {resource}: started {started[resource]}x, message {_where(broker, resource)}", file=sys.stderr)

    def drain(self, sent: list[str]) -> dict[str, int]:
        records = redis.Redis.from_url(self.recorder.db_url(1))
        store = DeadLetterStore(
            redis.Redis.from_url(self.broker.url), max_entries=100_000, retention=86400, completion_ttl=600
        )

        def settled() -> bool:
            done = {json.loads(x)["resource"] for x in records.lrange("test:done", 0, -1)}
            dead = {x.job.resource_id for x in store.recent(100_000)}
            return self.acknowledged <= done | dead

        try:
            wait_until(settled, timeout=self.args.visibility_timeout * 4 + 90, interval=1.0, what="the queue to drain")
        except AssertionError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        done_counts = Counter(json.loads(x)["resource"] for x in records.lrange("test:done", 0, -1))
        started_counts = Counter(json.loads(x)["resource"] for x in records.lrange("test:started", 0, -1))
        dead = {x.job.resource_id for x in store.recent(100_000)}
        completed = set(done_counts)
        self.diagnose(self.acknowledged - completed - dead, started_counts)
        return {
            "sent": len(sent),
            "acknowledged": len(self.acknowledged),
            "completed": len(completed),
            "completed_twice": sum(1 for n in done_counts.values() if n > 1),
            "dead_lettered": len(dead),
            "lost": len(self.acknowledged - completed - dead),
            "redone_after_a_kill_or_retry": sum(1 for r, n in started_counts.items() if n > 1),
            "never_acknowledged": len(set(sent) - self.acknowledged),
            "worker_kills": self.kills,
            "redis_restarts": self.redis_restarts,
            "refused_answers": sum(self.refused.values()),
        }


def _where(broker: redis.Redis, resource: str) -> str:
    """Where a lost event's message is, for the report: still queued, unacknowledged, or gone."""
    needle = f"'resource_id': '{resource}'".encode()
    places = []
    for key in broker.scan_iter():
        kind = broker.type(key)
        if kind == b"list" and any(needle in m for m in broker.lrange(key, 0, -1)):
            places.append(key.decode())
        elif kind == b"hash" and any(needle in v for v in broker.hvals(key)):
            places.append(key.decode())
    return ", ".join(places) or "nowhere in the broker"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of sending (default 120)")
    parser.add_argument("--rate", type=float, default=20, help="webhooks per second (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--visibility-timeout", type=int, default=10, help="redelivery delay after a crash")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.duration > 300:
        parser.error("--duration is capped at 300 s")
    workdir = Path(tempfile.mkdtemp(prefix="frameio-kit-soak-"))
    started = time.monotonic()
    counts = Soak(args, workdir).run()
    counts["seconds"] = round(time.monotonic() - started)
    if counts["lost"] or counts["completed_twice"]:
        print(f"process logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, value in counts.items():
        print(f"{name:>30}: {value}")
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "soak.json").write_text(json.dumps(counts, indent=2))
    return 0 if counts["lost"] == 0 and counts["completed_twice"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
