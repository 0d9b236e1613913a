"""`InstallSecretResolver`: each request's signing secret(s) from its workspace's install record.

Records are cached in-process for FRAMEIO_KIT_INSTALL_CACHE_TTL seconds (absent ones too, so
unsigned junk costs no Redis round trip), already decrypted, so the hot path neither reads Redis
nor decrypts per request. A change to a record is announced on a pub/sub channel and drops the
cached copy in every process at once; the TTL bounds staleness if that message is lost.

An account outside `allowed_accounts` gets no secret even when a record remains: removing it from
the list stops serving it at once (401), while its admins may still uninstall on /install.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
from redis.exceptions import RedisError

from shared import redis_keys
from shared.core.events import ActionEvent, WebhookEvent
from shared.errors import SecretResolutionError
from shared.install.models import Installation
from shared.install.store import InstallationStore

logger = logging.getLogger("frameio_kit.install")

MAX_ENTRIES = 10_000

_Entry = tuple[float, Installation | None]


class InstallSecretResolver:
    """The App's secret resolver under `install=True`; `secrets_for` also answers replaced secrets
    still inside their grace period (rolling secrets)."""

    def __init__(
        self, store: Callable[[], InstallationStore], ttl: float, allowed: Callable[[str], bool] | None = None
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._allowed = allowed
        self._records: dict[tuple[str, str], _Entry] = {}
        self._actions: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._listener: asyncio.Task[None] | None = None

    # -- the v0.0.10 SecretResolver protocol -------------------------------------------------

    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        found = await self.secrets_for(event)
        return found[0] if found else ""

    async def get_action_secret(self, event: ActionEvent) -> str:
        found = await self.secrets_for(event)
        return found[0] if found else ""

    # -- resolution ---------------------------------------------------------------------------

    async def secrets_for(self, event: WebhookEvent | ActionEvent) -> tuple[str, ...]:
        """The current secret, then unexpired previous ones; () when the event's workspace has no
        install, its account is no longer allowed, or the install has nothing for this event (answered 401)."""
        try:
            record = await self.record_for(event)
        except RedisError as exc:
            raise SecretResolutionError(event.type, f"install record unreadable ({type(exc).__name__})") from None
        if record is None or (self._allowed is not None and not self._allowed(record.account_id)):
            return ()
        now = time.time()
        if isinstance(event, ActionEvent):
            action = record.action(event.type)
            if action is None or (event.action_id and event.action_id != action.action_id):
                return ()
            current, previous = action.secret, action.previous_secrets
        else:
            if record.webhook is None or event.type not in record.webhook.events:
                return ()
            current, previous = record.webhook.secret, record.webhook.previous_secrets
        return (current.get_secret_value(), *(s.get_secret_value() for s, until in previous if until > now))

    async def record_for(self, event: WebhookEvent | ActionEvent) -> Installation | None:
        """The install record the event belongs to: by account and workspace; for an action step
        that omits its workspace, by the action id, only if the account matches."""
        self._ensure_listener()
        account_id = event.account_id
        workspace_id = event.workspace_id
        if isinstance(event, ActionEvent) and not workspace_id and event.action_id:
            where = await self._workspace_of_action(event.action_id)
            if where is None or (account_id and where[0] != account_id):
                return None
            account_id, workspace_id = where
        if not account_id or not workspace_id:
            return None
        return await self._record(account_id, workspace_id)

    async def _record(self, account_id: str, workspace_id: str) -> Installation | None:
        key = (account_id, workspace_id)
        now = time.monotonic()
        cached = self._records.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._store().get(account_id, workspace_id)
        if len(self._records) >= MAX_ENTRIES:
            self._records.clear()
        self._records[key] = (now + self._ttl, record)
        return record

    async def _workspace_of_action(self, action_id: str) -> tuple[str, str] | None:
        now = time.monotonic()
        cached = self._actions.get(action_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        where = await self._store().workspace_of_action(action_id)
        if len(self._actions) >= MAX_ENTRIES:
            self._actions.clear()
        self._actions[action_id] = (now + self._ttl, where)
        return where

    # -- invalidation --------------------------------------------------------------------------

    def invalidate(self, account_id: str | None = None, workspace_id: str | None = None) -> None:
        """Drop one workspace's cached record (everything when called without arguments)."""
        if account_id is None or workspace_id is None:
            self._records.clear()
        else:
            self._records.pop((account_id, workspace_id), None)
        self._actions.clear()  # small, and an action may have moved

    def _ensure_listener(self) -> None:
        if self._ttl == 0 or (self._listener is not None and not self._listener.done()):
            return
        try:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="install-cache-invalidation")
        except RuntimeError:
            return

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._store().redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(redis_keys.installation_changes_channel())
                    self.invalidate()  # anything may have changed while not subscribed
                    delay = 0.5
                    async for message in pubsub.listen():
                        account_id, workspace_id = orjson.loads(message["data"])
                        self.invalidate(str(account_id), str(workspace_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the TTL still bounds staleness; try again
                logger.warning("install cache invalidation listener: %s; resubscribing", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):  # noqa: S110 - closing: the outcome is moot
                pass
            self._listener = None
