"""What an install is made of: `InstallField` declarations, the `Installation` record, the manifest
derived from the registered handlers, and the diff between the two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, SecretStr

from shared.errors import ConfigurationError

VALID_FIELD_TYPES = frozenset({"text", "password", "select", "textarea"})
RESERVED_FIELD_NAMES = frozenset({"account_id", "workspace_id"})


@dataclass(frozen=True)
class InstallField:
    """A configuration field shown to the workspace admin at install time.

    `name` is the key in `get_install_config()`; `type` is text, password, select or textarea;
    `options` are a select's choices; `sensitive` (default: True for password fields) values are
    never shown back on the install page.
    """

    name: str
    label: str
    type: str = "text"
    required: bool = False
    description: str = ""
    options: tuple[str, ...] = ()
    default: str = ""
    sensitive: bool | None = None

    @property
    def is_sensitive(self) -> bool:
        return self.sensitive if self.sensitive is not None else self.type == "password"


def validate_install_fields(fields: list[InstallField] | tuple[InstallField, ...]) -> tuple[InstallField, ...]:
    """The fields, checked at App construction: a bad declaration fails at start-up, not at install."""
    seen: set[str] = set()
    for f in fields:
        if not isinstance(f, InstallField):
            raise ConfigurationError(f"install_fields must contain InstallField instances, got {type(f).__name__}")
        if not f.name or not f.name.replace("_", "").isalnum():
            raise ConfigurationError(f"install field name {f.name!r} must be letters, digits and underscores")
        if f.name in seen:
            raise ConfigurationError(f"Duplicate install field name: '{f.name}'")
        if f.name in RESERVED_FIELD_NAMES:
            raise ConfigurationError(f"Reserved install field name: '{f.name}'")
        if f.type not in VALID_FIELD_TYPES:
            raise ConfigurationError(
                f"Invalid install field type '{f.type}' for field '{f.name}'. "
                f"Valid types: {', '.join(sorted(VALID_FIELD_TYPES))}"
            )
        if f.type == "select" and not f.options:
            raise ConfigurationError(f"Select install field '{f.name}' needs options")
        seen.add(f.name)
    return tuple(fields)


class WebhookRecord(BaseModel):
    """The webhook created in a workspace. `previous_secrets` (secret, accepted until epoch seconds)
    keep a replaced secret valid for FRAMEIO_KIT_INSTALL_SECRET_GRACE."""

    webhook_id: str
    secret: SecretStr
    events: list[str]
    url: str
    previous_secrets: list[tuple[SecretStr, float]] = Field(default_factory=list)


class ActionRecord(BaseModel):
    """One custom action created in a workspace, for one `on_action` handler."""

    action_id: str
    secret: SecretStr
    event_type: str
    name: str
    description: str
    url: str
    previous_secrets: list[tuple[SecretStr, float]] = Field(default_factory=list)


class Installation(BaseModel):
    """Record of a complete app installation for a workspace (stored encrypted, whole)."""

    account_id: str
    workspace_id: str
    installed_at: datetime
    updated_at: datetime
    installed_by_user_id: str = ""
    webhook: WebhookRecord | None = None
    actions: list[ActionRecord] = Field(default_factory=list)
    config: dict[str, str] | None = None

    def action(self, event_type: str) -> ActionRecord | None:
        return next((a for a in self.actions if a.event_type == event_type), None)


class ActionManifestEntry(BaseModel):
    """An action the app needs: one per `on_action` handler."""

    event_type: str
    name: str
    description: str


class HandlerManifest(BaseModel):
    """What the app needs installed, derived from the registered handlers."""

    webhook_events: list[str]
    actions: list[ActionManifestEntry]


class InstallationDiff(BaseModel):
    """What an update would change, shown to the admin before they confirm."""

    webhook_events_added: list[str]
    webhook_events_removed: list[str]
    actions_added: list[ActionManifestEntry]
    actions_removed: list[ActionRecord]
    actions_modified: list[ActionManifestEntry]
    url_changed: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(
            self.webhook_events_added
            or self.webhook_events_removed
            or self.actions_added
            or self.actions_removed
            or self.actions_modified
            or self.url_changed
        )


def compute_diff(manifest: HandlerManifest, existing: Installation | None, url: str) -> InstallationDiff:
    """The changes that bring `existing` (None: nothing installed) to `manifest` at `url`."""
    have_events = set(existing.webhook.events) if existing and existing.webhook else set()
    want_events = set(manifest.webhook_events)
    have_actions = {a.event_type: a for a in existing.actions} if existing else {}
    want_actions = {a.event_type: a for a in manifest.actions}
    urls = ([existing.webhook.url] if existing and existing.webhook else []) + [a.url for a in have_actions.values()]
    return InstallationDiff(
        webhook_events_added=sorted(want_events - have_events),
        webhook_events_removed=sorted(have_events - want_events),
        actions_added=[a for t, a in sorted(want_actions.items()) if t not in have_actions],
        actions_removed=[a for t, a in sorted(have_actions.items()) if t not in want_actions],
        actions_modified=[
            a
            for t, a in sorted(want_actions.items())
            if t in have_actions and (have_actions[t].name, have_actions[t].description) != (a.name, a.description)
        ],
        url_changed=any(u != url for u in urls),
    )
