"""Per-interaction state of custom actions: the answers of earlier steps and each step's answer.

`run_step` runs a step once per (interaction, body): a retry gets the stored answer, a retry
arriving while the first run is in progress waits for it. An interaction belongs to the owner of
its first step and is bounded (shared/actions/admission.py). `MemoryActionState` serves one ingress
process; `RedisActionState` several processes or replicas (FRAMEIO_KIT_ACTION_STATE=redis).
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.actions.admission import NO_OWNER, Owner, StateLimits
from shared.actions.memory_state import MemoryActionState
from shared.actions.redis_state import RedisActionState
from shared.actions.steps import (
    CONTEXT_FIELDS,
    ActionState,
    Compute,
    Interaction,
    StepOutcome,
    StepResult,
    apply_context,
    context_of,
    step_key,
)
from shared.settings import Settings

__all__ = [
    "CONTEXT_FIELDS",
    "NO_OWNER",
    "ActionState",
    "Compute",
    "Interaction",
    "MemoryActionState",
    "Owner",
    "RedisActionState",
    "StateLimits",
    "StepOutcome",
    "StepResult",
    "apply_context",
    "build_action_state",
    "context_of",
    "step_key",
]


def build_action_state(settings: Settings, redis: Redis) -> ActionState:
    """The store FRAMEIO_KIT_ACTION_STATE selects, with the configured limits."""
    limits = StateLimits.from_settings(settings)
    if settings.action_state == "redis":
        return RedisActionState(
            redis, ttl=settings.action_state_ttl, lock_ttl=settings.action_timeout + 1.0, limits=limits
        )
    return MemoryActionState(ttl=settings.action_state_ttl, max_interactions=settings.action_state_max, limits=limits)
