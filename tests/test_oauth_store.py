"""The token store and manager against a real Redis and the IMS stand-in, in-process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from key_value.aio.stores.disk import DiskStore

from frameio_kit import App
from shared.oauth.config import OAuthConfig, get_user_token
from shared.oauth.token_manager import TokenManager, build_token_manager
from shared.oauth.token_store import REFRESH_TOKEN_LIFETIME, TokenData, encryption_keys
from shared.redis_keys import user_token_key
from shared.settings import Settings
from tests.ims_standin import CLIENT_ID, CLIENT_SECRET

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


def manager_for(ims: Any, redis_url: str, keys: str, storage: Any = None, **settings: Any) -> TokenManager:
    config = OAuthConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url="https://kit.example.test",
        encryption_key=keys,
        ims_url=ims.url,
        storage=storage,
    )
    return build_token_manager(config, Settings(redis_url=redis_url, **settings))


def fresh_pair(ims: Any, user: str = "user-1") -> dict[str, Any]:
    """A token response as IMS gives it, registered with the stand-in so it can be refreshed."""
    return ims._issue(user)


async def with_manager(manager: TokenManager, work: Any) -> Any:
    try:
        return await work(manager)
    finally:
        await manager.close()


def test_records_are_sealed_and_expire_with_the_refresh_token(ims, redis_server, redis_client):
    ims.access_expires_in = 3600
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> TokenData | None:
        await m.store_token("user-1", pair)
        return await m.get_token("user-1")

    data = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert data is not None and data.access_token.get_secret_value() == pair["access_token"]
    sealed = redis_client.get(user_token_key("user-1"))
    assert pair["access_token"].encode() not in sealed and pair["refresh_token"].encode() not in sealed
    assert pair["access_token"] not in repr(data)
    assert REFRESH_TOKEN_LIFETIME - 60 < redis_client.ttl(user_token_key("user-1")) <= REFRESH_TOKEN_LIFETIME


def test_old_key_still_reads_after_a_new_first_key_and_the_next_write_uses_the_new_key(ims, redis_server, redis_client):
    pair = fresh_pair(ims)
    asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.store_token("user-1", pair)))

    rotated = manager_for(ims, redis_server.url, f"{KEY_B},{KEY_A}")
    read = asyncio.run(with_manager(rotated, lambda m: m.get_token("user-1")))
    assert read is not None and read.access_token.get_secret_value() == pair["access_token"]
    Fernet(KEY_A.encode()).decrypt(redis_client.get(user_token_key("user-1")))  # not re-sealed by a read

    asyncio.run(
        with_manager(manager_for(ims, redis_server.url, f"{KEY_B},{KEY_A}"), lambda m: m.store_token("user-1", read))
    )
    Fernet(KEY_B.encode()).decrypt(redis_client.get(user_token_key("user-1")))  # re-sealed with the first key
    only_new = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_B), lambda m: m.get_token("user-1")))
    assert only_new is not None and only_new.access_token.get_secret_value() == pair["access_token"]


def test_an_undecryptable_record_reads_as_signed_out_and_is_removed(ims, redis_server, redis_client):
    asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.store_token("user-1", fresh_pair(ims)))
    )
    data = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_C), lambda m: m.get_token("user-1")))
    assert data is None
    assert redis_client.exists(user_token_key("user-1")) == 0


def test_concurrent_readers_in_one_process_share_one_refresh(ims, redis_server, redis_client):
    ims.access_expires_in = 60
    pair = fresh_pair(ims)
    ims.access_expires_in, ims.refresh_delay = 86399, 0.3

    async def work(m: TokenManager) -> list[TokenData | None]:
        await m.store_token("user-1", pair)
        return await asyncio.gather(*(m.get_token("user-1") for _ in range(20)))

    results = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert ims.calls["refresh_token"] == 1
    assert {r.access_token.get_secret_value() for r in results if r} == {ims.latest_access["user-1"]}
    assert ims.latest_access["user-1"] != pair["access_token"]


def test_py_key_value_storage_is_honoured(ims, redis_server, redis_client):
    storage = DictKeyValue()
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> TokenData | None:
        await m.store_token("user-1", pair)
        return await m.get_token("user-1")

    data = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A, storage=storage), work))
    assert data is not None and data.access_token.get_secret_value() == pair["access_token"]
    ((collection, key),) = storage.entries
    assert collection == "frameio-kit-tokens" and key == user_token_key("user-1")
    assert pair["access_token"] not in str(storage.entries) and storage.ttls[key] > 86400
    assert redis_client.exists(user_token_key("user-1")) == 0


def test_webhook_style_run_binds_the_stored_token_only_for_signed_in_users(ims, redis_server, redis_client):
    from shared.core.events import WebhookEvent
    from shared.oauth.token_manager import run_as_event_user

    pair = fresh_pair(ims)
    base = {
        "type": "file.ready",
        "account": {"id": "a"},
        "workspace": {"id": "w"},
        "resource": {"id": "r", "type": "file"},
    }

    async def handler(event: Any) -> None:
        try:
            seen.append(get_user_token())
        except RuntimeError:
            seen.append(None)

    seen: list[str | None] = []

    async def work(m: TokenManager) -> None:
        await m.store_token("user-1", pair)
        for user in ("user-1", "user-2"):
            await run_as_event_user(m, handler, WebhookEvent.model_validate({**base, "user": {"id": user}}))

    asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert seen == [pair["access_token"], None]


def test_no_key_is_a_start_up_error_outside_dev_mode_only(ims):
    config = OAuthConfig(client_id="c", client_secret="s", base_url="https://x.test")
    with pytest.raises(ValueError, match="FRAMEIO_KIT_ENCRYPTION_KEYS"):
        encryption_keys(config, Settings())
    with pytest.raises(ValueError, match="not a Fernet key"):
        encryption_keys(config, Settings(encryption_keys="not-a-key"))
    assert len(encryption_keys(config, Settings(encryption_keys=f" {KEY_A} , {KEY_B} "))) == 2
    assert len(encryption_keys(config, Settings(dev=True))) == 1
    assert "client_secret='**********'" in repr(OAuthConfig(client_id="c", client_secret="s", base_url="x"))


class DictKeyValue:
    """The py-key-value `AsyncKeyValue` methods the store uses, over a dict (no dependency needed)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        self.ttls: dict[str, float] = {}

    @property
    def entries(self) -> list[tuple[str, str]]:
        return list(self.data)

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        return self.data.get((collection or "default", key))

    async def put(
        self, key: str, value: Mapping[str, Any], *, collection: str | None = None, ttl: float | None = None
    ) -> None:
        self.data[(collection or "default", key)] = dict(value)
        self.ttls[key] = float(ttl or 0)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        return self.data.pop((collection or "default", key), None) is not None


def test_dev_mode_keeps_tokens_in_memory_only_without_a_redis_url(ims, redis_server):
    from shared.oauth.token_store import MemoryBackend, RedisBackend

    config = OAuthConfig(client_id="c", client_secret="s", base_url="https://x.test", encryption_key=KEY_A)
    memory = build_token_manager(config, Settings(dev=True))
    shared = build_token_manager(config, Settings(dev=True, redis_url=redis_server.url))
    production = build_token_manager(config, Settings())
    try:
        assert isinstance(memory.store.backend, MemoryBackend)
        assert isinstance(shared.store.backend, RedisBackend)
        assert isinstance(production.store.backend, RedisBackend)
    finally:
        for m in (memory, shared, production):
            asyncio.run(m.close())


def test_reference_oauth_example_with_a_real_py_key_value_disk_store(ims, redis_server, tmp_path, monkeypatch):
    """The reference's OAuthConfig example, as written (DiskStore, custom httpx client), with the
    token sealed on disk."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADOBE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ADOBE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("FRAMEIO_KIT_ENCRYPTION_KEYS", KEY_A)
    monkeypatch.setenv("FRAMEIO_KIT_IMS_URL", ims.url)
    monkeypatch.setenv("REDIS_URL", redis_server.url)

    custom_client = httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=100))
    app = App(
        oauth=OAuthConfig(
            client_id=os.getenv("ADOBE_CLIENT_ID"),  # type: ignore[arg-type]
            client_secret=os.getenv("ADOBE_CLIENT_SECRET"),  # type: ignore[arg-type]
            base_url="https://myapp.com",
            storage=DiskStore(directory="./tokens"),
            token_refresh_buffer_seconds=600,
            http_client=custom_client,
        )
    )
    pair = fresh_pair(ims)

    async def work() -> Any:
        await app.token_manager.store_token("user_123", pair)
        token = await app.token_manager.get_token(user_id="user_123")
        await app.token_manager.delete_token(user_id="user_123")
        gone = await app.token_manager.get_token(user_id="user_123")
        await app.token_manager.store_token("user_123", pair)
        await app.aclose()
        await custom_client.aclose()
        return token, gone

    token, gone = asyncio.run(work())
    assert token is not None and token.access_token.get_secret_value() == pair["access_token"]
    assert gone is None
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "tokens").rglob("*") if p.is_file())
    assert on_disk, "DiskStore wrote nothing"
    assert pair["access_token"].encode() not in on_disk and pair["refresh_token"].encode() not in on_disk
