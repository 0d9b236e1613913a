"""Where one checkout's ingress spends its CPU under load: py-spy samples it while wrk drives webhooks.

    python bench/profile_ingress.py --tree /path/to/checkout [--seconds 8] [--top 30]

Prints the functions with the most samples, inclusive and exclusive. Needs `py-spy` (pip install py-spy).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import payloads  # noqa: E402
from bench.procs import start_kit_ingress, wrk  # noqa: E402
from frameio_kit.testing import RedisServer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", default=str(ROOT))
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rs = RedisServer(work)
        rs.start()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FRAMEIO_KIT_")},
            "REDIS_URL": rs.url,
            "BENCH_RECORD_URL": rs.db_url(1),
            "WEBHOOK_SECRET": payloads.WEBHOOK_SECRET,
            "CUSTOM_ACTION_SECRET": payloads.ACTION_SECRET,
            "FRAMEIO_KIT_JOB_SIGNING_KEYS": payloads.JOB_SIGNING_KEY,
            "FRAMEIO_KIT_LOG_LEVEL": a.log_level,
            "PYTHONPATH": str(Path(a.tree).resolve()),
            "PYTHONSAFEPATH": "1",
        }
        server = start_kit_ingress("profiled", 1, env, work)
        reqs = work / "reqs"
        payloads.write_request_files(reqs, 60_000, 2, "prof")
        raw = work / "stacks.txt"
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "-r",
                "500",
                "-d",
                str(a.seconds),
                "-f",
                "raw",
                "-o",
                str(raw),
                "-p",
                str(server.service.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = wrk(server.url, reqs, duration=a.seconds + 2, server_pid=server.service.pid)
        spy.wait()
        server.service.stop()
        rs.stop()
        print(f"{result.rps:.0f} req/s, {result.cpu_us:.1f} us CPU/req")
        inclusive: collections.Counter[str] = collections.Counter()
        exclusive: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            n = int(count)
            frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
            total += n
            for f in set(frames):
                inclusive[f] += n
            exclusive[frames[-1]] += n
        print(f"{total} samples")
        print("-- inclusive")
        for f, n in inclusive.most_common(a.top):
            print(f"{100 * n / total:5.1f}%  {f}")
        print("-- exclusive")
        for f, n in exclusive.most_common(a.top):
            print(f"{100 * n / total:5.1f}%  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
