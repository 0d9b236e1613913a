"""v0.0.10's `Storage`, `MemoryStorage` and `DynamoDBStorage` (issue 25, item 3): importable from
`frameio_kit`; `MemoryStorage` accepted in dev mode and by the in-process harness, refused by a real
`frameio-kit ingress` / `worker` otherwise; `DynamoDBStorage` refused naming the Redis store; a
`Storage` of the user's own keeps the sealed token records."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

import frameio_kit
from frameio_kit import (
    ActionEvent,
    App,
    ConfigurationError,
    DynamoDBStorage,
    MemoryStorage,
    Message,
    OAuthConfig,
    Storage,
)
from frameio_kit.storage import StorageKeyValue
from frameio_kit.testing import IngressClient
from shared.redis_keys import user_token_key
from shared.settings import get_settings
from tests.helpers import cli_command

KEY = Fernet.generate_key().decode()
MEMORY_APP = """
from frameio_kit import App, MemoryStorage, OAuthConfig

app = App(oauth=OAuthConfig(client_id="cid", client_secret="csecret"), storage=MemoryStorage())
"""
DYNAMO_APP = """
from frameio_kit import App, DynamoDBStorage, OAuthConfig

app = App(
    oauth=OAuthConfig(client_id="cid", client_secret="csecret"),
    storage=DynamoDBStorage(table_name="frameio-app-data"),
)
"""


class DictStorage:
    """A `Storage` as v0.0.10's guide writes one: `get`, `put(ttl=)`, `delete`, no `collection`."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.ttls: dict[str, int | None] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    async def put(self, key: str, value: dict[str, Any], *, ttl: int | None = None) -> None:
        self.entries[key], self.ttls[key] = value, ttl

    async def delete(self, key: str) -> None:
        self.entries.pop(key, None)


def write_app(folder: Path, source: str) -> str:
    (folder / "storage_app.py").write_text(textwrap.dedent(source))
    return str(folder / "storage_app.py") + ":app"


def run_cli(command: str, app: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(command, app), env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )


def test_the_v0010_storage_names_import_from_frameio_kit() -> None:
    for name in ("Storage", "MemoryStorage", "DynamoDBStorage"):
        assert name in frameio_kit.__all__
    assert isinstance(MemoryStorage(), Storage) and isinstance(DictStorage(), Storage)
    assert not isinstance(object(), Storage)


def test_memory_storage_keeps_values_until_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("frameio_kit.storage.time.monotonic", lambda: now[0])
    store = MemoryStorage()

    async def work() -> list[Any]:
        await store.put("a", {"v": 1}, ttl=10)
        await store.put("b", {"v": 2})
        seen = [await store.get("a"), await store.get("b")]
        now[0] += 10
        seen += [await store.get("a"), await store.get("b")]
        await store.delete("b")
        await store.delete("missing")
        return [*seen, await store.get("b")]

    assert asyncio.run(work()) == [{"v": 1}, {"v": 2}, None, {"v": 2}, None]


def test_dynamodb_storage_is_refused_naming_the_redis_store() -> None:
    with pytest.raises(ConfigurationError) as refused:
        DynamoDBStorage(table_name="frameio-app-data", region_name="us-east-1", create_table=True)
    assert isinstance(refused.value, ValueError)  # v0.0.10 callers catching ValueError still do
    assert "REDIS_URL" in str(refused.value) and "FRAMEIO_KIT_ENCRYPTION_KEYS" in str(refused.value)


def test_a_worker_importing_a_dynamodb_app_exits_2_with_the_reason(base_env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("worker", write_app(tmp_path, DYNAMO_APP), base_env, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "DynamoDBStorage is not available" in done.stderr and "REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["ingress", "worker"])
def test_memory_storage_is_refused_at_start_up_outside_dev_mode(
    command: str, base_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**base_env, "FRAMEIO_KIT_ENCRYPTION_KEYS": KEY}
    done = run_cli(command, write_app(tmp_path, MEMORY_APP), env, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()  # one paragraph, no traceback
    assert line.startswith("frameio-kit: configuration error: App(storage=MemoryStorage())")
    assert "separate processes" in line and "REDIS_URL" in line and "frameio-kit dev" in line


def test_memory_storage_is_accepted_in_dev_mode_by_ingress_and_worker(
    start_ingress: Any, start_worker: Any, tmp_path: Path
) -> None:
    app = write_app(tmp_path, MEMORY_APP)
    dev = {"FRAMEIO_KIT_DEV": "1", "FRAMEIO_KIT_ENCRYPTION_KEYS": KEY}
    url = start_ingress(app, extra_env=dev)  # waits for /healthz: it started
    worker = start_worker(app, extra_env=dev)  # waits for Celery's " ready."
    assert url.startswith("http://127.0.0.1:") and "configuration error" not in worker.output()


def test_in_dev_mode_memory_storage_means_the_shared_redis_store(
    monkeypatch: pytest.MonkeyPatch, redis_server: Any, redis_client: redis.Redis
) -> None:
    monkeypatch.setenv("FRAMEIO_KIT_DEV", "1")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    memory = MemoryStorage()
    app = App(oauth=OAuthConfig(client_id="cid", client_secret="csecret"), storage=memory, encryption_key=KEY)
    app.check_start_up(get_settings())  # accepted
    assert app.oauth is not None and app.oauth.storage is None  # the kit's own store, as App() without storage

    async def work() -> None:
        try:
            await app.token_manager.store_token(
                "user-1",
                {"access_token": "at-secret", "refresh_token": "rt-secret", "expires_in": 3600},
                account_id="acc-1",
            )
        finally:
            await app.close()

    asyncio.run(work())
    sealed = redis_client.get(user_token_key("acc-1", "user-1"))
    assert sealed is not None and b"at-secret" not in sealed  # in Redis, where the worker reads it, sealed
    assert memory._data == {}


def test_the_in_process_harness_accepts_memory_storage_outside_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", "a" * 40)
    app = App(storage=MemoryStorage())

    @app.on_action("my_app.hello", name="Hello", description="Say hello")
    async def hello(event: ActionEvent) -> Message:
        return Message(title="Hello", description=event.resource_id)

    async def work() -> Any:
        async with IngressClient(app) as ingress:
            return await ingress.action("my_app.hello", resource_id="file-9").start()

    assert asyncio.run(work()) == {"title": "Hello", "description": "file-9"}
    with pytest.raises(ConfigurationError, match="separate processes"):
        app.create_router()  # a router for a real server is an ingress start-up: refused outside dev mode


def test_a_storage_of_your_own_keeps_the_sealed_token_records(
    monkeypatch: pytest.MonkeyPatch, redis_server: Any, redis_client: redis.Redis
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    mine = DictStorage()
    app = App(oauth=OAuthConfig(client_id="cid", client_secret="csecret"), storage=mine, encryption_key=KEY)
    assert app.oauth is not None and isinstance(app.oauth.storage, StorageKeyValue)
    assert app.oauth.storage.storage is mine

    async def work() -> Any:
        try:
            await app.token_manager.store_token(
                "user-1",
                {"access_token": "at-secret", "refresh_token": "rt-secret", "expires_in": 3600},
                account_id="acc-1",
            )
            return await app.token_manager.get_token("user-1", account_id="acc-1")
        finally:
            await app.close()

    data = asyncio.run(work())
    assert data is not None and data.access_token.get_secret_value() == "at-secret"
    key = "frameio-kit-tokens:" + user_token_key("acc-1", "user-1")
    assert key in mine.entries and "at-secret" not in str(mine.entries)
    assert isinstance(mine.ttls[key], int) and mine.ttls[key] > 86400  # whole seconds, the refresh token's life
    assert redis_client.exists(user_token_key("acc-1", "user-1")) == 0
