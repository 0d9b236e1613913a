"""v0.0.10's storage names (`Storage`, `MemoryStorage`, `DynamoDBStorage`) on this kit's one store.

The ingress and every worker are separate processes that must see the same token and install records,
so those records live sealed with Fernet in Redis (`REDIS_URL`, keys from FRAMEIO_KIT_ENCRYPTION_KEYS)
whatever `App(storage=...)` says. What each v0.0.10 name means here (docs/decisions.md, "Storage"):

- `Storage`: the protocol (`get`, `put`, `delete`); an object of your own that implements it keeps the
  sealed token records (through an adapter onto the py-key-value interface `OAuthConfig(storage=...)`
  takes); sign-in state, refresh locks and install records stay in Redis.
- `MemoryStorage()`: "the default store", as `App()` without storage; accepted only in dev mode
  (`frameio-kit dev`, FRAMEIO_KIT_DEV) and by `frameio_kit.testing`'s in-process harness, refused at
  the start of an ingress or worker otherwise (one process's memory cannot be shared).
- `DynamoDBStorage(...)`: refused when constructed, naming the Redis store.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from shared.settings import Settings

MEMORY_STORAGE_REFUSED = (
    "App(storage=MemoryStorage()) keeps records in one process's memory, but the ingress and the workers "
    "are separate processes that must share sign-in tokens and install records, so it is accepted only in "
    "dev mode (`frameio-kit dev`, FRAMEIO_KIT_DEV=1) and in frameio_kit.testing's in-process harness. "
    "Remove storage=MemoryStorage(): frameio-kit keeps these records encrypted in the Redis store every "
    "process shares (REDIS_URL, with Fernet keys in FRAMEIO_KIT_ENCRYPTION_KEYS)."
)

DYNAMODB_REFUSED = (
    "DynamoDBStorage is not available in this frameio-kit: sign-in tokens and install records are kept "
    "encrypted in the Redis store that the ingress and every worker share. Remove storage=DynamoDBStorage(...) "
    "and set REDIS_URL (and FRAMEIO_KIT_ENCRYPTION_KEYS, comma-separated Fernet keys) instead."
)


@runtime_checkable
class Storage(Protocol):
    """v0.0.10's key-value protocol: async `get`, `put` (with an optional TTL in seconds) and `delete`."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under `key`, None when absent or expired."""
        ...

    async def put(self, key: str, value: dict[str, Any], *, ttl: int | None = None) -> None:
        """Store `value` under `key`; `ttl` None keeps it until deleted."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; no error when absent."""
        ...


class MemoryStorage:
    """A process-local dict with TTLs (v0.0.10's default store), usable on its own.

    `App(storage=MemoryStorage())` puts no record in it: it stands for the kit's own store, as `App()`
    does, because dev mode runs a worker process beside the ingress too. Accepted only in dev mode and
    in the in-process testing harness; `frameio-kit ingress` / `worker` refuse it otherwise.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[dict[str, Any], float | None]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and time.monotonic() >= expires:
            del self._data[key]
            return None
        return value

    async def put(self, key: str, value: dict[str, Any], *, ttl: int | None = None) -> None:
        self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


class DynamoDBStorage:
    """v0.0.10's DynamoDB store, refused here: records must stay in the Redis store every process shares."""

    def __init__(
        self,
        table_name: str,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        boto_session_kwargs: dict[str, Any] | None = None,
        create_table: bool = False,
    ) -> None:
        # v0.0.10's signature, so a call that is right there gets this message rather than a TypeError.
        raise ConfigurationError(DYNAMODB_REFUSED)


class StorageKeyValue:
    """A v0.0.10 `Storage` seen through the py-key-value calls the token store makes (`collection=`)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        return await self.storage.get(_key(key, collection))

    async def put(
        self, key: str, value: Mapping[str, Any], *, collection: str | None = None, ttl: float | None = None
    ) -> None:
        await self.storage.put(_key(key, collection), dict(value), ttl=None if ttl is None else max(1, math.ceil(ttl)))

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        await self.storage.delete(_key(key, collection))
        return True


def _key(key: str, collection: str | None) -> str:
    return f"{collection}:{key}" if collection else key


def token_storage(storage: Any | None) -> Any | None:
    """What `App(storage=...)` hands `OAuthConfig.storage`: None for the kit's store (`MemoryStorage`
    included), a v0.0.10 `Storage` behind the adapter, anything else (a py-key-value store) as is."""
    if storage is None or isinstance(storage, MemoryStorage):
        return None
    if isinstance(storage, Storage) and not _takes_collection(storage):
        return StorageKeyValue(storage)
    return storage


def _takes_collection(storage: object) -> bool:
    """py-key-value stores take `collection=`; v0.0.10's protocol does not."""
    try:
        parameters = inspect.signature(storage.get).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    return "collection" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def refuse_process_local(storage: Any | None, settings: Settings) -> None:
    """Raise `ConfigurationError` for `MemoryStorage` outside dev mode: called where an ingress or a
    worker starts (the App's `check_start_up`), never by the in-process testing harness."""
    if isinstance(storage, MemoryStorage) and not settings.dev:
        raise ConfigurationError(MEMORY_STORAGE_REFUSED)
