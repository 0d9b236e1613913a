"""`InstallationStore`: install records and intents in the shared Redis, sealed with the token
store's keys (`TokenCipher`: the first key encrypts, every key decrypts, so one rotation covers both).

A record is sealed whole, secrets and install field values included, and carries its account and
workspace inside the seal: one copied under another tenant's key is refused, never used.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, SecretStr
from redis.asyncio import Redis

from shared import redis_keys
from shared.errors import TokenUnreadable
from shared.install.models import Installation
from shared.oauth.token_store import TokenCipher
from shared.redis_lock import redis_lock

logger = logging.getLogger("frameio_kit.install")

INTENT_TTL = 7 * 86400
"""An intent nobody resumed is dropped after a week (its resources are found by listing anyway)."""
LOCK_TIMEOUT = 120.0


class CreatedResource(BaseModel):
    """A webhook or action an operation created (or is about to create: `resource_id` "")."""

    kind: Literal["webhook", "action"]
    resource_id: str = ""
    name: str = ""


class Intent(BaseModel):
    """An operation under way in one workspace, recorded before its first Frame.io call."""

    op: Literal["install", "update", "uninstall", "rotate"]
    account_id: str
    workspace_id: str
    url: str
    started_at: float = Field(default_factory=time.time)
    created: list[CreatedResource] = Field(default_factory=list)


def _seal_json(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError(type(value).__name__)


def _raw(value: bytes | str) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else value


class InstallationStore:
    """Reads and writes records and intents; announces every change on a pub/sub channel."""

    def __init__(self, redis: Redis, cipher: TokenCipher) -> None:
        self.redis = redis
        self.cipher = cipher

    async def get(self, account_id: str, workspace_id: str) -> Installation | None:
        """The record, None when absent. One that no key opens or that names another tenant is
        logged and treated as absent (requests then get 401), never deleted here."""
        sealed = await self.redis.get(redis_keys.installation_key(account_id, workspace_id))
        if sealed is None:
            return None
        try:
            record = Installation.model_validate(orjson.loads(self.cipher.decrypt(_raw(sealed))))
        except (TokenUnreadable, ValueError) as exc:
            logger.error("install record of account %s workspace %s unreadable: %s", account_id, workspace_id, exc)
            return None
        if (record.account_id, record.workspace_id) != (account_id, workspace_id):
            logger.error("install record under account %s workspace %s names another tenant", account_id, workspace_id)
            return None
        return record

    async def save(self, record: Installation) -> None:
        raw = orjson.dumps(record.model_dump(), default=_seal_json)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(redis_keys.installation_key(record.account_id, record.workspace_id), self.cipher.encrypt(raw))
            for action in record.actions:
                pipe.set(
                    redis_keys.installation_action_index_key(action.action_id),
                    orjson.dumps([record.account_id, record.workspace_id]),
                )
            await pipe.execute()
        await self.announce(record.account_id, record.workspace_id)

    async def delete(self, account_id: str, workspace_id: str, action_ids: list[str]) -> None:
        keys = [redis_keys.installation_key(account_id, workspace_id)]
        keys += [redis_keys.installation_action_index_key(a) for a in action_ids]
        await self.redis.delete(*keys)
        await self.announce(account_id, workspace_id)

    async def forget_actions(self, action_ids: list[str]) -> None:
        if action_ids:
            await self.redis.delete(*[redis_keys.installation_action_index_key(a) for a in action_ids])

    async def workspace_of_action(self, action_id: str) -> tuple[str, str] | None:
        raw = await self.redis.get(redis_keys.installation_action_index_key(action_id))
        if raw is None:
            return None
        account_id, workspace_id = orjson.loads(raw)
        return str(account_id), str(workspace_id)

    async def announce(self, account_id: str, workspace_id: str) -> None:
        """Tell every process to drop its cached copy of this workspace's record."""
        await self.redis.publish(redis_keys.installation_changes_channel(), orjson.dumps([account_id, workspace_id]))

    # -- intents ---------------------------------------------------------------------------

    async def get_intent(self, account_id: str, workspace_id: str) -> Intent | None:
        sealed = await self.redis.get(redis_keys.installation_intent_key(account_id, workspace_id))
        if sealed is None:
            return None
        try:
            return Intent.model_validate(orjson.loads(self.cipher.decrypt(_raw(sealed))))
        except (TokenUnreadable, ValueError) as exc:
            logger.error("install intent of account %s workspace %s unreadable: %s", account_id, workspace_id, exc)
            return None

    async def save_intent(self, intent: Intent) -> None:
        key = redis_keys.installation_intent_key(intent.account_id, intent.workspace_id)
        await self.redis.set(key, self.cipher.encrypt(intent.model_dump_json().encode()), ex=INTENT_TTL)

    async def clear_intent(self, account_id: str, workspace_id: str) -> None:
        await self.redis.delete(redis_keys.installation_intent_key(account_id, workspace_id))

    def lock(self, account_id: str, workspace_id: str, wait: float = 5.0) -> AbstractAsyncContextManager[None]:
        """One operation at a time per workspace, across processes."""
        return redis_lock(
            self.redis,
            redis_keys.installation_lock_key(account_id, workspace_id),
            timeout=LOCK_TIMEOUT,
            wait=wait,
            busy="another install operation is running in this workspace",
        )

    async def close(self) -> None:
        await self.redis.aclose()
