"""What both action state stores share: a step's input and result, the store interface, and the
context fields a submission may omit and takes from its interaction's first call."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel

from shared.actions.admission import NO_OWNER, Owner
from shared.core.events import ActionEvent, Project, Resource, User, Workspace

MAX_ANSWERS_PER_INTERACTION = 64
"""Stored answers kept per interaction in memory (oldest dropped): retries come within seconds."""

# The context fields Frame.io sends on an action's first call and may omit on submissions.
CONTEXT_FIELDS = ("account_id", "project", "resource", "user", "workspace")
_CONTEXT_MODELS: dict[str, type[BaseModel]] = {
    "project": Project,
    "resource": Resource,
    "user": User,
    "workspace": Workspace,
}


@dataclass(frozen=True)
class Interaction:
    """What a step sees: the earlier steps' form data (oldest first) and the first call's context."""

    history: list[dict[str, Any]]
    context: dict[str, Any]


@dataclass(frozen=True)
class StepResult:
    """What running a step produced: the response body (b"" for an empty 200), the form data to
    add to the history (None: nothing, e.g. the first call or a failed step) and the context to
    keep if the interaction has none yet."""

    answer: bytes
    record: dict[str, Any] | None
    context: dict[str, Any] | None = None


class StepOutcome(NamedTuple):
    answer: bytes
    how: Literal["ran", "replayed", "waited"]


Compute = Callable[[Interaction], Awaitable[StepResult]]
"""Runs the step given what the interaction holds so far."""


def context_of(event: ActionEvent) -> dict[str, Any]:
    """The context fields `event` carries, as JSON-ready data."""
    return event.model_dump(include=set(CONTEXT_FIELDS), exclude_none=True, exclude_defaults=True)


def apply_context(event: ActionEvent, context: dict[str, Any]) -> ActionEvent:
    """Fill the context fields `event` lacks from the interaction's first call (returns event).
    The stored context came from a verified call of the same interaction and owner."""
    for name in CONTEXT_FIELDS:
        if name not in context or getattr(event, name):
            continue
        model = _CONTEXT_MODELS.get(name)
        setattr(event, name, model.model_validate(context[name]) if model is not None else context[name])
    return event


def step_key(body: bytes) -> str:
    """One step of an interaction: Frame.io retries a step with the same body."""
    return hashlib.sha256(body).hexdigest()


def kept_bytes(result: StepResult, new_context: bool) -> int:
    """What a step's result adds to its interaction's size: answer, history record, first context."""
    size = len(result.answer)
    if result.record is not None:
        size += len(orjson.dumps(result.record))
    if new_context and result.context:
        size += len(orjson.dumps(result.context))
    return size


class ActionState(ABC):
    """Where the ingress keeps interactions (shared/actions/state.py says which)."""

    @abstractmethod
    async def run_step(
        self,
        interaction_id: str,
        step: str,
        compute: Compute,
        wait: float,
        *,
        owner: Owner = NO_OWNER,
        size: int = 0,
    ) -> StepOutcome:
        """The answer to `step`: stored, awaited from a run in progress (up to `wait` seconds,
        then StepStillRunning), or computed now and stored with its history record.

        `owner` is who the step was signed for: a step of an interaction that another owner started
        raises ActionStepRefused (403) and sees nothing. `size` (the request body's length) bounds
        what the step may add: past the interaction's limits, or a new interaction past the
        account's quota, also raise ActionStepRefused (413, 429) without running the step."""
