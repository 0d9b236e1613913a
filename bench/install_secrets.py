"""Issue 13, acceptance 6: ingress throughput with install-record secrets against a static secret.

Starts a private redis-server and two ingresses through the real CLI (bench/install_app.py), seeds
one install record whose webhook secret signs the requests, and replays the same pre-signed ~1 KB
webhooks at both with wrk, interleaved over rounds; prints each round's ratio and the median.

    python bench/install_secrets.py [--rounds 3] [--duration 8] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.payloads import _IDS, JOB_SIGNING_KEY, WEBHOOK_SECRET, write_request_files  # noqa: E402
from bench.procs import Server, wrk  # noqa: E402
from frameio_kit.testing import RedisServer, Service, cli_command, free_port  # noqa: E402
from shared.install.models import Installation, WebhookRecord  # noqa: E402
from shared.install.store import InstallationStore  # noqa: E402
from shared.oauth.token_store import TokenCipher  # noqa: E402
from shared.redis_client import async_client  # noqa: E402


def seed(redis_url: str, key: str) -> None:
    async def write() -> None:
        store = InstallationStore(async_client(redis_url, "tokens"), TokenCipher([key]))
        now = datetime.now(UTC)
        await store.save(
            Installation(
                account_id=_IDS["account_id"],
                workspace_id=_IDS["workspace_id"],
                installed_at=now,
                updated_at=now,
                webhook=WebhookRecord(
                    webhook_id="bench-hook", secret=SecretStr(WEBHOOK_SECRET), events=["file.ready"], url="http://x/"
                ),
            )
        )
        await store.close()

    asyncio.run(write())


def start(name: str, target: str, env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    argv = cli_command("ingress", target, "--port", str(port))
    server = Server(name, Service(name, argv, env, logdir), port, 1)
    server.wait_ready()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fk-install-bench-"))
    server = RedisServer(work)
    server.start()
    key = Fernet.generate_key().decode()
    env = {
        "REDIS_URL": server.url,
        "PYTHONPATH": str(ROOT),
        "FRAMEIO_KIT_JOB_SIGNING_KEYS": JOB_SIGNING_KEY,
        "FRAMEIO_KIT_ENCRYPTION_KEYS": key,
        "FRAMEIO_KIT_SESSION_SECRET": "bench-session-secret-0123456789abcdef",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FRAMEIO_KIT_LOG_LEVEL": "WARNING",
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    r = redis.Redis.from_url(server.url)
    servers = {
        "static": start("static", "bench.install_app:static_app", env, work),
        "install": start("install", "bench.install_app:install_app", env, work),
    }
    ratios: list[float] = []
    try:
        for round_no in range(1, args.rounds + 1):
            rps: dict[str, float] = {}
            for name in ("static", "install") if round_no % 2 else ("install", "static"):
                r.flushall()
                seed(server.url, key)
                prefix = work / f"req-{name}-{round_no}"
                write_request_files(prefix, per_thread=60_000, threads=2, tag=f"{name}{round_no}")
                result = wrk(servers[name].url, prefix, connections=args.connections, duration=args.duration)
                if result.non2xx or result.errors:
                    raise SystemExit(f"{name}: {result.non2xx} non-2xx, {result.errors} socket errors")
                rps[name] = result.rps
            ratios.append(rps["install"] / rps["static"])
            print(
                f"round {round_no}: static {rps['static']:.0f} req/s, install {rps['install']:.0f} req/s, "
                f"ratio {ratios[-1]:.3f}"
            )
        print(
            f"install/static throughput: median {statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]"
        )
    finally:
        for s in servers.values():
            s.service.stop()
        server.stop()


if __name__ == "__main__":
    main()
