"""Install, update, uninstall and secret rotation, safe against failure half way.

Every operation records an intent before its first Frame.io call and notes each resource it is
about to create, then its id. The policy:
- install is compensated: on failure everything it created is deleted and no record is written;
  if the clean-up itself fails, the intent stays and the next attempt cleans up first;
- update, uninstall and rotate roll forward: the record is saved after every step, so it always
  names exactly what exists in Frame.io; a failure leaves the rest for the next press of the button;
- a create whose outcome is unknown (timeout, 5xx, a crash before its id was noted) is settled by
  listing the workspace and deleting what points at our URL but is in no record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretStr

from shared.errors import FrameioApiError, InstallationNotFoundError, InstallFailed
from shared.install.api import FrameioAdminApi
from shared.install.models import (
    ActionRecord,
    HandlerManifest,
    Installation,
    WebhookRecord,
    compute_diff,
)
from shared.install.store import CreatedResource, InstallationStore, Intent

logger = logging.getLogger("frameio_kit.install")


@dataclass
class Installer:
    """One operation's collaborators: the store, the admin's API client, the app's manifest."""

    store: InstallationStore
    api: FrameioAdminApi
    manifest: HandlerManifest
    app_name: str
    secret_grace: int = 900

    # -- install --------------------------------------------------------------------------------

    async def install(
        self, account_id: str, workspace_id: str, url: str, user_id: str, config: dict[str, str]
    ) -> Installation:
        async with self.store.lock(account_id, workspace_id):
            await self._recover(account_id, workspace_id, url)
            if await self.store.get(account_id, workspace_id) is not None:
                raise InstallFailed("This workspace is already installed; use Update.")
            intent = Intent(op="install", account_id=account_id, workspace_id=workspace_id, url=url)
            await self.store.save_intent(intent)
            now = datetime.now(UTC)
            record = Installation(
                account_id=account_id,
                workspace_id=workspace_id,
                installed_at=now,
                updated_at=now,
                installed_by_user_id=user_id,
                config=config,
            )
            try:
                if self.manifest.webhook_events:
                    record.webhook = await self._create_webhook(intent, url, self.manifest.webhook_events)
                for entry in self.manifest.actions:
                    record.actions.append(
                        await self._create_action(intent, url, entry.event_type, entry.name, entry.description)
                    )
            except FrameioApiError as exc:
                raise InstallFailed(await self._compensate(intent, exc)) from None
            await self.store.save(record)
            await self.store.clear_intent(account_id, workspace_id)
            logger.info(
                "installed account %s workspace %s: %d webhook(s), %d action(s)",
                account_id,
                workspace_id,
                1 if record.webhook else 0,
                len(record.actions),
            )
            return record

    async def _compensate(self, intent: Intent, exc: FrameioApiError) -> str:
        created = [c for c in intent.created if c.resource_id]
        failures = 0
        for c in reversed(created):
            try:
                await self._delete(intent.account_id, c)
            except FrameioApiError:
                failures += 1
        unknown = exc.status == 0 or exc.status >= 500 or any(not c.resource_id for c in intent.created)
        if unknown and not failures:
            try:
                await self._sweep(intent.account_id, intent.workspace_id, intent.url, keep=set())
            except FrameioApiError:
                failures += 1
        what = f"Frame.io refused the install: {exc}."
        logger.warning(
            "install of account %s workspace %s failed at %s (%d); compensated %d resource(s), %d clean-up failure(s)",
            intent.account_id,
            intent.workspace_id,
            exc.step,
            exc.status,
            len(created),
            failures,
        )
        if failures:
            intent.created = [c for c in intent.created]  # kept: the next attempt deletes them first
            await self.store.save_intent(intent)
            return (
                f"{what} Cleaning up what was created also failed; nothing is installed. "
                "Press Install again: it removes the leftovers first."
            )
        await self.store.clear_intent(intent.account_id, intent.workspace_id)
        return f"{what} The {len(created)} item(s) created before the failure were deleted; nothing is installed."

    # -- update ---------------------------------------------------------------------------------

    async def update(self, account_id: str, workspace_id: str, url: str, config: dict[str, str]) -> Installation:
        async with self.store.lock(account_id, workspace_id):
            await self._recover(account_id, workspace_id, url)
            record = await self.store.get(account_id, workspace_id)
            if record is None:
                raise InstallationNotFoundError("This workspace is not installed.")
            intent = Intent(op="update", account_id=account_id, workspace_id=workspace_id, url=url)
            await self.store.save_intent(intent)
            diff = compute_diff(self.manifest, record, url)
            try:
                await self._update_webhook(intent, record, url)
                for entry in diff.actions_added:
                    record.actions.append(
                        await self._create_action(intent, url, entry.event_type, entry.name, entry.description)
                    )
                    await self._save(record)
                wanted = {a.event_type: a for a in self.manifest.actions}
                for action in list(record.actions):
                    want = wanted.get(action.event_type)
                    if want is None:
                        await self.api.delete_action(account_id, action.action_id, action.name)
                        record.actions.remove(action)
                        await self.store.forget_actions([action.action_id])
                        await self._save(record)
                    elif (action.name, action.description, action.url) != (want.name, want.description, url):
                        await self.api.update_action(
                            account_id, action.action_id, name=want.name, description=want.description, url=url
                        )
                        action.name, action.description, action.url = want.name, want.description, url
                        await self._save(record)
            except FrameioApiError as exc:
                await self.store.save_intent(intent)
                raise InstallFailed(
                    f"The update stopped: {exc}. What was done before is saved; press Update again to finish."
                ) from None
            record.config = config
            await self._save(record)
            await self.store.clear_intent(account_id, workspace_id)
            logger.info("updated account %s workspace %s", account_id, workspace_id)
            return record

    async def _update_webhook(self, intent: Intent, record: Installation, url: str) -> None:
        events = self.manifest.webhook_events
        if record.webhook is None and events:
            record.webhook = await self._create_webhook(intent, url, events)
            await self._save(record)
        elif record.webhook is not None and not events:
            await self.api.delete_webhook(record.account_id, record.webhook.webhook_id)
            record.webhook = None
            await self._save(record)
        elif record.webhook is not None and (sorted(record.webhook.events), record.webhook.url) != (
            sorted(events),
            url,
        ):
            await self.api.update_webhook(record.account_id, record.webhook.webhook_id, url=url, events=events)
            record.webhook.events, record.webhook.url = list(events), url
            await self._save(record)

    # -- uninstall ------------------------------------------------------------------------------

    async def uninstall(self, account_id: str, workspace_id: str, url: str) -> None:
        async with self.store.lock(account_id, workspace_id):
            await self._recover(account_id, workspace_id, url)
            record = await self.store.get(account_id, workspace_id)
            if record is None:
                raise InstallationNotFoundError("This workspace is not installed.")
            intent = Intent(op="uninstall", account_id=account_id, workspace_id=workspace_id, url=url)
            await self.store.save_intent(intent)
            try:
                if record.webhook is not None:
                    await self.api.delete_webhook(account_id, record.webhook.webhook_id)
                    record.webhook = None
                    await self._save(record)
                for action in list(record.actions):
                    await self.api.delete_action(account_id, action.action_id, action.name)
                    record.actions.remove(action)
                    await self.store.forget_actions([action.action_id])
                    await self._save(record)
            except FrameioApiError as exc:
                raise InstallFailed(
                    f"Uninstall stopped: {exc}. What was removed is gone; press Uninstall again to finish."
                ) from None
            await self.store.delete(account_id, workspace_id, [])
            await self.store.clear_intent(account_id, workspace_id)
            logger.info("uninstalled account %s workspace %s", account_id, workspace_id)

    # -- rolling secrets ------------------------------------------------------------------------

    async def rotate(self, account_id: str, workspace_id: str, url: str) -> Installation:
        """Re-create the webhook and every action for new secrets. The replaced secrets stay
        accepted for `secret_grace` seconds, so deliveries signed before the switch still pass."""
        async with self.store.lock(account_id, workspace_id):
            await self._recover(account_id, workspace_id, url)
            record = await self.store.get(account_id, workspace_id)
            if record is None:
                raise InstallationNotFoundError("This workspace is not installed.")
            intent = Intent(op="rotate", account_id=account_id, workspace_id=workspace_id, url=url)
            await self.store.save_intent(intent)
            until = time.time() + self.secret_grace
            try:
                if record.webhook is not None:
                    old = record.webhook
                    new = await self._create_webhook(intent, url, old.events)
                    new.previous_secrets = [(old.secret, until), *_unexpired(old.previous_secrets)]
                    record.webhook = new
                    await self._save(record)
                    await self.api.delete_webhook(account_id, old.webhook_id)
                for i, action in enumerate(list(record.actions)):
                    fresh = await self._create_action(intent, url, action.event_type, action.name, action.description)
                    fresh.previous_secrets = [(action.secret, until), *_unexpired(action.previous_secrets)]
                    record.actions[i] = fresh
                    await self._save(record)
                    await self.api.delete_action(account_id, action.action_id, action.name)
                    await self.store.forget_actions([action.action_id])
            except FrameioApiError as exc:
                raise InstallFailed(
                    f"Rotation stopped: {exc}. Secrets replaced so far stay valid; press Rotate again to finish."
                ) from None
            await self.store.clear_intent(account_id, workspace_id)
            logger.info("rotated secrets of account %s workspace %s", account_id, workspace_id)
            return record

    # -- helpers -------------------------------------------------------------------------------

    async def _create_webhook(self, intent: Intent, url: str, events: list[str]) -> WebhookRecord:
        note = CreatedResource(kind="webhook", name=self.app_name)
        intent.created.append(note)
        await self.store.save_intent(intent)  # before the call: a crash after it is found by listing
        webhook_id, secret = await self.api.create_webhook(
            intent.account_id, intent.workspace_id, name=self.app_name, url=url, events=list(events)
        )
        note.resource_id = webhook_id
        await self.store.save_intent(intent)
        return WebhookRecord(webhook_id=webhook_id, secret=SecretStr(secret), events=list(events), url=url)

    async def _create_action(
        self, intent: Intent, url: str, event_type: str, name: str, description: str
    ) -> ActionRecord:
        note = CreatedResource(kind="action", name=name)
        intent.created.append(note)
        await self.store.save_intent(intent)
        action_id, secret = await self.api.create_action(
            intent.account_id, intent.workspace_id, name=name, description=description, event=event_type, url=url
        )
        note.resource_id = action_id
        await self.store.save_intent(intent)
        return ActionRecord(
            action_id=action_id,
            secret=SecretStr(secret),
            event_type=event_type,
            name=name,
            description=description,
            url=url,
        )

    async def _save(self, record: Installation) -> None:
        record.updated_at = datetime.now(UTC)
        await self.store.save(record)

    async def _delete(self, account_id: str, resource: CreatedResource) -> None:
        if resource.kind == "webhook":
            await self.api.delete_webhook(account_id, resource.resource_id)
        else:
            await self.api.delete_action(account_id, resource.resource_id, resource.name)

    async def _recover(self, account_id: str, workspace_id: str, url: str) -> None:
        """Settle a leftover intent: delete whatever it created that no record names."""
        intent = await self.store.get_intent(account_id, workspace_id)
        if intent is None:
            return
        record = await self.store.get(account_id, workspace_id)
        keep = _ids(record)
        try:
            for c in intent.created:
                if c.resource_id and c.resource_id not in keep:
                    await self._delete(account_id, c)
            await self._sweep(account_id, workspace_id, intent.url, keep)
        except FrameioApiError as exc:
            raise InstallFailed(
                f"An earlier {intent.op} left items behind and removing them failed: {exc}. Try again shortly."
            ) from None
        await self.store.clear_intent(account_id, workspace_id)
        logger.info("recovered the unfinished %s of account %s workspace %s", intent.op, account_id, workspace_id)

    async def _sweep(self, account_id: str, workspace_id: str, url: str, keep: set[str]) -> None:
        for hook in await self.api.list_webhooks(account_id, workspace_id):
            if hook.get("url") == url and str(hook.get("id")) not in keep:
                await self.api.delete_webhook(account_id, str(hook["id"]))
        for action in await self.api.list_actions(account_id, workspace_id):
            if action.get("url") == url and str(action.get("id")) not in keep:
                await self.api.delete_action(account_id, str(action["id"]), str(action.get("name", "")))


def _ids(record: Installation | None) -> set[str]:
    if record is None:
        return set()
    return ({record.webhook.webhook_id} if record.webhook else set()) | {a.action_id for a in record.actions}


def _unexpired(previous: list[tuple[SecretStr, float]]) -> list[tuple[SecretStr, float]]:
    now = time.time()
    return [(s, until) for s, until in previous if until > now]
