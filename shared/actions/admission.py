"""Who may run a step of an interaction, and how much one may hold: the owner binding, the
per-interaction limits and the per-account quota shared by both state stores (docs/actions.md).

An `interaction_id` is no secret (it travels in sign-in links, and any tenant can send any id),
so an interaction belongs to the account, action and user of its first step, as the signature
vouched for them, and a step naming anyone else is refused before it sees or adds anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from shared.core.events import ActionEvent
from shared.errors import ActionStepRefused
from shared.settings import Settings

_FIELDS = ("account", "action type", "action id", "user")


@dataclass(frozen=True)
class Owner:
    """The account, action (event type and Frame.io action id) and user a step was signed for, as sent."""

    account_id: str = ""
    event_type: str = ""
    action_id: str = ""
    user_id: str = ""

    @classmethod
    def of(cls, event: ActionEvent) -> Owner:
        """Read before the interaction's context fills what a submission omits: what was verified."""
        return cls(event.account_id, event.type, event.action_id, event.user_id)

    def conflict(self, first: Owner) -> str | None:
        """The first field this step carries with another value than the interaction's first step,
        or None. A field the step omits is not compared: it is filled from the first step, which is
        how Frame.io sends submissions (often without account or user)."""
        for name, mine, theirs in zip(_FIELDS, self.values(), first.values(), strict=True):
            if mine and mine != theirs:
                return name
        return None

    def values(self) -> tuple[str, str, str, str]:
        return (self.account_id, self.event_type, self.action_id, self.user_id)

    def dumps(self) -> bytes:
        return orjson.dumps(self.values())

    @classmethod
    def loads(cls, raw: bytes | str) -> Owner:
        """The stored owner; anything unreadable owns nothing a step could match but ''."""
        try:
            values = orjson.loads(raw)
        except orjson.JSONDecodeError:
            values = None
        if not isinstance(values, list) or len(values) != len(_FIELDS):
            return cls("\0", "\0", "\0", "\0")
        return cls(*(str(v) for v in values))


NO_OWNER = Owner()
"""A step that names nobody (direct use of a store): it matches any interaction."""


@dataclass(frozen=True)
class StateLimits:
    """Steps run and bytes kept per interaction; live interactions per account."""

    max_steps: int = 50
    max_bytes: int = 256 * 1024
    account_quota: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> StateLimits:
        return cls(
            max_steps=settings.action_state_max_steps,
            max_bytes=settings.action_state_max_bytes,
            account_quota=settings.action_state_account_quota,
        )

    def check_room(self, steps: int, size: int) -> None:
        """Refuse a step that would make the interaction run more than `max_steps` steps or keep more
        than `max_bytes` (`steps` and `size` include the step itself)."""
        if steps > self.max_steps:
            raise ActionStepRefused(
                "This action has gone through too many steps. Run it again to start over.",
                status_code=413,
                reason=f"more than {self.max_steps} steps",
            )
        if size > self.max_bytes:
            raise ActionStepRefused(
                "This action holds too much data. Run it again to start over.",
                status_code=413,
                reason=f"more than {self.max_bytes} bytes",
            )


def other_owner(field: str) -> ActionStepRefused:
    """A step for an interaction that another account, action or user started."""
    return ActionStepRefused(
        "This form was started by someone else. Run the action again to start your own.",
        status_code=403,
        reason=f"its {field} differs from the interaction's first step",
    )


def over_quota(quota: int) -> ActionStepRefused:
    """A new interaction for an account that holds its quota of live ones."""
    return ActionStepRefused(
        "Too many actions of this account are in progress. Try again later.",
        status_code=429,
        reason=f"the account holds its quota of {quota} interactions",
    )
