"""Fixtures: a private redis-server per session, and the ingress and workers as real CLI processes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Imported early on purpose: when no collected test imports it, hypothesis's pytest plugin does in
# the end-of-run summary, where CPython 3.11.7 fails to compile it under assertion rewriting
# ("AST constructor recursion depth mismatch") and a passing run of a few files exits 1.
import hypothesis  # noqa: F401
import pytest
import redis

from frameio_kit.testing.pytest_plugin import frameio_redis  # noqa: F401 - the fixture, registered here
from shared.settings import get_settings
from tests.frameio_standin import FrameioStandIn
from tests.helpers import (
    ACTION_SECRET,
    JOB_SIGNING_KEY,
    ROOT,
    WEBHOOK_SECRET,
    RedisServer,
    Service,
    cli_command,
    free_port,
)
from tests.ims_standin import ImsServer
from tests.install_support import Ingress, ingress_fixture, start_api

TEST_APP = "tests.apps.basic:app"


@pytest.fixture(scope="session")
def redis_server(frameio_redis: RedisServer) -> RedisServer:  # noqa: F811 - the imported fixture
    """The suite's name for the plugin's session-wide redis-server."""
    return frameio_redis


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """Clean broker (db 0) and record (db 1) databases for each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def records(redis_server: RedisServer) -> Callable[[str], list[dict[str, Any]]]:
    """What the test integration's handlers recorded, by kind ('started', 'done', 'action')."""
    client = redis.Redis.from_url(redis_server.db_url(1))

    def read(kind: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in client.lrange(f"test:{kind}", 0, -1)]

    return read


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("FRAMEIO_KIT_") or name in {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_APP"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("FRAMEIO_KIT_JOB_SIGNING_KEYS", JOB_SIGNING_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def base_env(redis_server: RedisServer) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FRAMEIO_KIT_") and k not in {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET"}
    }
    env.update(
        {
            "REDIS_URL": redis_server.url,
            "TEST_RECORD_URL": redis_server.db_url(1),
            "PYTHONPATH": str(ROOT),
            "FRAMEIO_KIT_VISIBILITY_TIMEOUT": "6",
            "FRAMEIO_KIT_JOB_SIGNING_KEYS": JOB_SIGNING_KEY,
            "FRAMEIO_KIT_RETRY_BACKOFF": "0.2",
            # Tests read processes' log lines as they happen (and check what is absent from them): one
            # write per line. tests/test_logs.py covers the buffered handler itself.
            "FRAMEIO_KIT_LOG_FLUSH_INTERVAL": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_ingress(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., str]]:
    started: list[Service] = []

    def start(app: str = TEST_APP, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> str:
        port = free_port()
        env = {**base_env, "WEBHOOK_SECRET": WEBHOOK_SECRET, "CUSTOM_ACTION_SECRET": ACTION_SECRET, **(extra_env or {})}
        svc = Service("ingress", cli_command("ingress", app, "--port", str(port), *args), env, tmp_path, cwd=ROOT)
        started.append(svc)
        url = f"http://127.0.0.1:{port}"
        svc.wait_for_http(url + "/healthz")
        return url

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def start_worker(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """A worker started as users start it, without the signing secrets in its environment."""
    started: list[Service] = []

    def start(
        app: str = TEST_APP,
        argv: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
        concurrency: int = 8,
    ) -> Service:
        env = {**base_env, **(extra_env or {})}
        command = argv or cli_command("worker", app, "--concurrency", str(concurrency))
        svc = Service("worker", command, env, tmp_path, cwd=ROOT)
        started.append(svc)
        svc.wait_for_output(r" ready\.", timeout=60)
        return svc

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def ims() -> Iterator[Any]:
    """A local stand-in for Adobe IMS and Frame.io's GET /v4/me (tests/ims_standin.py)."""
    from tests.ims_standin import ImsServer, ImsStandIn

    server = ImsServer(ImsStandIn())
    server.start()
    yield server.standin
    server.stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from tests.containers.stack import NUMBERS

    measured = config.stash.get(NUMBERS, {})
    if measured:
        terminalreporter.write_sep("-", "container numbers")
        for name, value in measured.items():
            terminalreporter.write_line(f"{name}: {value}")


__all__ = ["ACTION_SECRET", "WEBHOOK_SECRET"]


# -- the install tests (test_install_e2e.py, test_install_browser.py) -------------------------------


@pytest.fixture(name="api")
def install_api() -> Iterator[tuple[ImsServer, FrameioStandIn]]:
    """The IMS stand-in serving the Frame.io API stand-in too."""
    server, standin = start_api()
    yield server, standin
    server.stop()


@pytest.fixture(name="ingress")
def install_ingress(
    api: tuple[ImsServer, FrameioStandIn], base_env: dict[str, str], tmp_path: Path, redis_client: redis.Redis
) -> Iterator[Ingress]:
    """A real ingress serving the install test app against those stand-ins."""
    yield from ingress_fixture(base_env, api[0].standin.url, tmp_path)
