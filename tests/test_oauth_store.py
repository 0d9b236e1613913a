"""The token store and manager against a real Redis and the IMS stand-in, in-process."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from key_value.aio.stores.disk import DiskStore

from frameio_kit import App
from shared.context import get_user_token
from shared.core.events import WebhookEvent
from shared.errors import ConfigurationError, EncryptionKeyMismatch
from shared.oauth.config import OAuthConfig
from shared.oauth.token_manager import IMS_TIMEOUT, LOCK_TIMEOUT, REFRESH_DEADLINE, TokenManager, build_token_manager
from shared.oauth.token_store import (
    REFRESH_TOKEN_LIFETIME,
    TokenData,
    encryption_keys,
    key_fingerprint,
)
from shared.redis_keys import key_canary_key, user_token_accounts_key, user_token_key, user_token_lock_key
from shared.settings import Settings, get_settings
from tests.ims_standin import CLIENT_ID, CLIENT_SECRET

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
ACC = "acc-1"


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
        await m.store_token("user-1", pair, account_id=ACC)
        return await m.get_token("user-1", account_id=ACC)

    data = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert data is not None and data.access_token.get_secret_value() == pair["access_token"]
    sealed = redis_client.get(user_token_key(ACC, "user-1"))
    assert pair["access_token"].encode() not in sealed and pair["refresh_token"].encode() not in sealed
    assert pair["access_token"] not in repr(data)
    assert REFRESH_TOKEN_LIFETIME - 60 < redis_client.ttl(user_token_key(ACC, "user-1")) <= REFRESH_TOKEN_LIFETIME


def test_old_key_still_reads_after_a_new_first_key_and_the_next_write_uses_the_new_key(ims, redis_server, redis_client):
    pair = fresh_pair(ims)
    asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.store_token("user-1", pair, account_id=ACC))
    )

    rotated = manager_for(ims, redis_server.url, f"{KEY_B},{KEY_A}")
    read = asyncio.run(with_manager(rotated, lambda m: m.get_token("user-1", account_id=ACC)))
    assert read is not None and read.access_token.get_secret_value() == pair["access_token"]
    Fernet(KEY_A.encode()).decrypt(redis_client.get(user_token_key(ACC, "user-1")))  # not re-sealed by a read

    asyncio.run(
        with_manager(
            manager_for(ims, redis_server.url, f"{KEY_B},{KEY_A}"),
            lambda m: m.store_token("user-1", read, account_id=ACC),
        )
    )
    Fernet(KEY_B.encode()).decrypt(redis_client.get(user_token_key(ACC, "user-1")))  # re-sealed with the first key
    only_new = asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_B), lambda m: m.get_token("user-1", account_id=ACC))
    )
    assert only_new is not None and only_new.access_token.get_secret_value() == pair["access_token"]


def test_an_undecryptable_record_reads_as_signed_out_is_kept_and_the_log_names_key_fingerprints(
    ims, redis_server, redis_client, caplog
):
    pair = fresh_pair(ims)
    asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.store_token("user-1", pair, account_id=ACC))
    )
    sealed = redis_client.get(user_token_key(ACC, "user-1"))

    with caplog.at_level(logging.ERROR, logger="frameio_kit.oauth"):
        data = asyncio.run(
            with_manager(manager_for(ims, redis_server.url, KEY_C), lambda m: m.get_token("user-1", account_id=ACC))
        )

    assert data is None
    assert redis_client.get(user_token_key(ACC, "user-1")) == sealed  # never deleted on a decryption failure
    assert Fernet(KEY_A.encode()).decrypt(sealed)  # and still readable with the right key
    logged = caplog.text
    assert key_fingerprint(KEY_C) in logged and "record kept" in logged
    assert KEY_C not in logged and KEY_A not in logged


def test_a_token_is_handed_out_only_for_the_account_it_was_issued_for(ims, redis_server, redis_client):
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> list[TokenData | None]:
        await m.store_token("user-1", pair, account_id="acc-A")
        return [
            await m.get_token("user-1", account_id="acc-A"),
            await m.get_token("user-1", account_id="acc-B"),
            await m.get_token("user-1", account_id=""),
        ]

    a, b, none = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert a is not None and a.access_token.get_secret_value() == pair["access_token"] and a.account_id == "acc-A"
    assert b is None and none is None
    assert redis_client.exists(user_token_key("acc-B", "user-1")) == 0
    assert user_token_key("a:b", "c") != user_token_key("a", "b:c")


def test_a_record_moved_under_another_tenants_key_is_not_used(ims, redis_server, redis_client):
    asyncio.run(
        with_manager(
            manager_for(ims, redis_server.url, KEY_A),
            lambda m: m.store_token("user-1", fresh_pair(ims), account_id="acc-A"),
        )
    )
    redis_client.copy(user_token_key("acc-A", "user-1"), user_token_key("acc-B", "user-1"))
    redis_client.set("frameio-kit:oauth:token:user-1", redis_client.get(user_token_key("acc-A", "user-1")))

    data = asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.get_token("user-1", account_id="acc-B"))
    )
    assert data is None  # the seal names acc-A: a copied or legacy record is never trusted for acc-B


def test_a_record_replaced_between_load_and_delete_survives(ims, redis_server, redis_client):
    ims.access_expires_in = 60  # inside the refresh buffer: the next read refreshes
    stale = fresh_pair(ims)
    ims.access_expires_in, ims.reject_refresh, ims.refresh_delay = 86399, True, 0.5
    replacement = fresh_pair(ims)

    async def work(m: TokenManager, other: TokenManager) -> TokenData | None:
        await m.store_token("user-1", stale, account_id=ACC)
        reading = asyncio.create_task(m.get_token("user-1", account_id=ACC))
        await asyncio.sleep(0)
        await _wait_for(lambda: ims.calls["refresh_token"] == 1)
        await other.store_token("user-1", replacement, account_id=ACC)  # a new sign-in while IMS answers
        try:
            return await reading
        finally:
            await other.close()

    data = asyncio.run(
        with_manager(
            manager_for(ims, redis_server.url, KEY_A),
            lambda m: work(m, manager_for(ims, redis_server.url, KEY_A)),
        )
    )
    assert ims.calls["refresh_token"] == 1
    assert data is not None and data.access_token.get_secret_value() == replacement["access_token"]
    kept = asyncio.run(
        with_manager(manager_for(ims, redis_server.url, KEY_A), lambda m: m.get_token("user-1", account_id=ACC))
    )
    assert kept is not None and kept.access_token.get_secret_value() == replacement["access_token"]


def test_a_rejected_refresh_deletes_the_record_it_loaded(ims, redis_server, redis_client):
    ims.access_expires_in = 60
    stale = fresh_pair(ims)
    ims.reject_refresh = True

    async def work(m: TokenManager) -> TokenData | None:
        await m.store_token("user-1", stale, account_id=ACC)
        return await m.get_token("user-1", account_id=ACC)

    assert asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work)) is None
    assert redis_client.exists(user_token_key(ACC, "user-1")) == 0


def test_a_refresh_is_bounded_below_the_lock_life_and_frees_the_lock(ims, redis_server, redis_client):
    assert REFRESH_DEADLINE + IMS_TIMEOUT / 2 < LOCK_TIMEOUT and IMS_TIMEOUT < REFRESH_DEADLINE
    ims.access_expires_in = 120  # stale but not expired
    pair = fresh_pair(ims)
    ims.refresh_delay = 5.0  # IMS hangs longer than the (lowered) deadline

    async def work(m: TokenManager) -> tuple[TokenData | None, float]:
        m.refresh_deadline = 0.5
        await m.store_token("user-1", pair, account_id=ACC)
        started = time.monotonic()
        data = await m.get_token("user-1", account_id=ACC)
        return data, time.monotonic() - started

    data, took = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert took < 3.0, took
    assert data is not None and data.access_token.get_secret_value() == pair["access_token"]  # still valid: used
    assert redis_client.exists(user_token_lock_key(ACC, "user-1")) == 0  # released, not left to expire


def test_key_canary_is_written_once_then_refuses_foreign_keys_and_follows_rotation(ims, redis_server, redis_client):
    def check(keys: str, **settings: Any) -> None:
        asyncio.run(with_manager(manager_for(ims, redis_server.url, keys, **settings), lambda m: m.check_keys()))

    check(KEY_A)
    canary = redis_client.get(key_canary_key())
    assert Fernet(KEY_A.encode()).decrypt(canary) and redis_client.ttl(key_canary_key()) == -1
    with pytest.raises(EncryptionKeyMismatch) as refused:
        check(KEY_C)
    message = str(refused.value)
    assert "FRAMEIO_KIT_ENCRYPTION_KEYS" in message and key_fingerprint(KEY_C) in message and KEY_C not in message

    check(f"{KEY_A},{KEY_B}")  # step 1: the new key second everywhere
    assert redis_client.get(key_canary_key()) == canary
    check(f"{KEY_B},{KEY_A}")  # step 2: first everywhere; the canary moves to it
    Fernet(KEY_B.encode()).decrypt(redis_client.get(key_canary_key()))
    check(KEY_B)  # step 3: the old key dropped
    with pytest.raises(EncryptionKeyMismatch):
        check(KEY_A)
    check(KEY_C, dev=True)  # dev mode's throwaway keys replace the canary instead
    Fernet(KEY_C.encode()).decrypt(redis_client.get(key_canary_key()))


async def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_concurrent_readers_in_one_process_share_one_refresh(ims, redis_server, redis_client):
    ims.access_expires_in = 60
    pair = fresh_pair(ims)
    ims.access_expires_in, ims.refresh_delay = 86399, 0.3

    async def work(m: TokenManager) -> list[TokenData | None]:
        await m.store_token("user-1", pair, account_id=ACC)
        return await asyncio.gather(*(m.get_token("user-1", account_id=ACC) for _ in range(20)))

    results = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert ims.calls["refresh_token"] == 1
    assert {r.access_token.get_secret_value() for r in results if r} == {ims.latest_access["user-1"]}
    assert ims.latest_access["user-1"] != pair["access_token"]


def test_py_key_value_storage_is_honoured(ims, redis_server, redis_client):
    storage = DictKeyValue()
    pair = fresh_pair(ims)

    async def work(m: TokenManager) -> TokenData | None:
        await m.store_token("user-1", pair, account_id=ACC)
        return await m.get_token("user-1", account_id=ACC)

    data = asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A, storage=storage), work))
    assert data is not None and data.access_token.get_secret_value() == pair["access_token"]
    key = user_token_key(ACC, "user-1")
    # The record, and the sealed index of the user's accounts (for delete_token outside a handler).
    assert set(storage.entries) == {
        ("frameio-kit-tokens", key),
        ("frameio-kit-tokens", user_token_accounts_key("user-1")),
    }
    assert pair["access_token"] not in str(storage.entries) and storage.ttls[key] > 86400
    assert redis_client.exists(user_token_key(ACC, "user-1")) == 0


def test_webhook_style_run_binds_the_stored_token_only_for_signed_in_users(ims, redis_server, redis_client):
    from shared.core.events import WebhookEvent
    from shared.oauth.token_manager import run_as_event_user

    pair = fresh_pair(ims)
    base = {
        "type": "file.ready",
        "account": {"id": ACC},
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
        await m.store_token("user-1", pair, account_id=ACC)
        for user, account in (("user-1", ACC), ("user-2", ACC), ("user-1", "acc-other")):
            event = {**base, "user": {"id": user}, "account": {"id": account}}
            await run_as_event_user(m, handler, WebhookEvent.model_validate(event))

    asyncio.run(with_manager(manager_for(ims, redis_server.url, KEY_A), work))
    assert seen == [pair["access_token"], None, None]


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
        await app.token_manager.store_token("user_123", pair, account_id="acc_1")
        token = await app.token_manager.get_token(user_id="user_123", account_id="acc_1")
        await app.token_manager.delete_token(user_id="user_123", account_id="acc_1")
        gone = await app.token_manager.get_token(user_id="user_123", account_id="acc_1")
        await app.token_manager.store_token("user_123", pair, account_id="acc_1")
        await app.aclose()
        await custom_client.aclose()
        return token, gone

    token, gone = asyncio.run(work())
    assert token is not None and token.access_token.get_secret_value() == pair["access_token"]
    assert gone is None
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "tokens").rglob("*") if p.is_file())
    assert on_disk, "DiskStore wrote nothing"
    assert pair["access_token"].encode() not in on_disk and pair["refresh_token"].encode() not in on_disk


def test_reference_get_token_by_user_id_answers_for_the_running_events_account_only(ims, redis_server, monkeypatch):
    """The reference's `app.token_manager.get_token(user_id=...)`: inside a handler it means the
    event's account; outside one, the account must be named (tokens are bound to tenants)."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("FRAMEIO_KIT_ENCRYPTION_KEYS", KEY_A)
    get_settings.cache_clear()
    app = App(
        oauth=OAuthConfig(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url="https://kit.example.test", ims_url=ims.url
        )
    )
    pair = fresh_pair(ims)
    seen: dict[str, Any] = {}

    @app.on_webhook("file.ready", secret="s" * 32)
    async def handler(event: WebhookEvent) -> None:
        data = await app.token_manager.get_token(user_id="user-1")
        seen[event.account_id] = data.access_token.get_secret_value() if data else None

    async def work() -> None:
        await app.token_manager.store_token("user-1", pair, account_id=ACC)
        with pytest.raises(ConfigurationError):
            await app.token_manager.get_token(user_id="user-1")
        spec = app.webhook_handlers["file.ready"]
        for account in (ACC, "acc-other"):
            event = WebhookEvent.model_validate(
                {
                    "type": "file.ready",
                    "account": {"id": account},
                    "workspace": {"id": "w"},
                    "resource": {"id": "r", "type": "file"},
                    "user": {"id": "user-1"},
                }
            )
            await app.run(spec, event)
        await app.aclose()

    asyncio.run(work())
    get_settings.cache_clear()
    assert seen == {ACC: pair["access_token"], "acc-other": None}
