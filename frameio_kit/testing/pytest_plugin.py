"""pytest fixtures from `frameio_kit.testing`: enable with `pytest_plugins = ["frameio_kit.testing.pytest_plugin"]`
in your top-level conftest.py, or import the fixtures you want into it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from frameio_kit.testing.redis_server import RedisServer


@pytest.fixture(scope="session")
def frameio_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private `redis-server` for the test session (`.url`, `.db_url(n)`); stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.close()
