"""Action state in Redis, shared by every ingress process (FRAMEIO_KIT_ACTION_STATE=redis).

Each step: admit.lua binds a new interaction to its owner and the account's quota (or returns the
owner to compare), then the stored answer or a short per-step lock, with the steps and bytes the
interaction holds counted atomically before its handler runs. Keys: shared/redis_keys.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.actions.admission import NO_OWNER, Owner, StateLimits, other_owner, over_quota
from shared.actions.steps import ActionState, Compute, Interaction, StepOutcome, StepResult, kept_bytes
from shared.errors import ActionStateUnavailable, StepStillRunning
from shared.redis_keys import (
    action_account_key,
    action_answer_key,
    action_context_key,
    action_history_key,
    action_lock_key,
    action_owner_key,
    action_size_key,
)

logger = logging.getLogger(__name__)

_ADMIT_LUA = resources.files("shared.actions").joinpath("admit.lua").read_text(encoding="utf-8")
_POLL_INTERVAL = 0.05
_REDIS_ERRORS = (RedisError, OSError)


@dataclass(frozen=True)
class _Keys:
    interaction_id: str
    answer: str
    lock: str
    history: str
    context: str
    owner: str
    size: str

    @classmethod
    def of(cls, interaction_id: str, step: str) -> _Keys:
        return cls(
            interaction_id,
            action_answer_key(interaction_id, step),
            action_lock_key(interaction_id, step),
            action_history_key(interaction_id),
            action_context_key(interaction_id),
            action_owner_key(interaction_id),
            action_size_key(interaction_id),
        )


class RedisActionState(ActionState):
    """In Redis: a short lock per step (`lock_ttl`, longer than a handler may run) and polling of
    the stored answer for a retry that finds the lock taken."""

    def __init__(self, redis: Redis, ttl: int, lock_ttl: float, limits: StateLimits | None = None) -> None:
        self._redis = redis
        self._ttl = ttl
        self._lock_ms = max(1, int(lock_ttl * 1000))
        self._limits = limits or StateLimits()
        self._admit = redis.register_script(_ADMIT_LUA)

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
        keys = _Keys.of(interaction_id, step)
        deadline = time.monotonic() + wait
        how: Literal["replayed", "waited"] = "replayed"
        try:
            first = await self._owner_of(keys, owner)
            while True:
                stored = await self._redis.get(keys.answer)
                if stored is not None:
                    return StepOutcome(_as_bytes(stored), how)
                if await self._redis.set(keys.lock, b"1", nx=True, px=self._lock_ms):
                    break
                how = "waited"
                if time.monotonic() >= deadline:
                    raise StepStillRunning(f"step still running after {wait:.1f}s")
                await asyncio.sleep(_POLL_INTERVAL)
            # The previous holder may have stored its answer between our GET and SET.
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(keys.answer)
            pipe.lrange(keys.history, 0, -1)
            pipe.get(keys.context)
            pipe.hincrby(keys.size, "steps", 1)
            pipe.hincrby(keys.size, "bytes", size)
            pipe.expire(keys.size, self._ttl)
            stored, raw_history, raw_context, steps, kept, _ = await pipe.execute()
        except _REDIS_ERRORS as exc:
            raise ActionStateUnavailable(f"action state unavailable: {type(exc).__name__}") from exc
        if stored is not None:
            await self._release(keys, size, steps=1)
            return StepOutcome(_as_bytes(stored), how)
        try:
            self._limits.check_room(int(steps), int(kept))
        except BaseException:
            await self._release(keys, size, steps=1)
            raise
        try:
            context = orjson.loads(raw_context) if raw_context is not None else {}
            result = await compute(Interaction([orjson.loads(x) for x in raw_history], context))
        except BaseException:
            await self._release(keys, size, steps=0)
            raise
        await self._store(keys, first, result, reserved=size, new_context=raw_context is None)
        return StepOutcome(result.answer, "ran")

    async def _owner_of(self, keys: _Keys, owner: Owner) -> Owner:
        """The interaction's owner, `owner` if this step creates it; refused for anyone else."""
        stored = await self._admit(
            keys=[keys.owner, action_account_key(owner.account_id), keys.history, keys.context, keys.size],
            args=[owner.dumps(), keys.interaction_id, int(time.time()), self._ttl, self._limits.account_quota],
        )
        stored = _as_bytes(stored)
        if stored == b"":
            return owner
        if stored == b"quota":
            raise over_quota(self._limits.account_quota)
        first = Owner.loads(stored)
        conflict = owner.conflict(first)
        if conflict is not None:
            raise other_owner(conflict)
        return first

    async def _store(self, keys: _Keys, first: Owner, result: StepResult, reserved: int, new_context: bool) -> None:
        ttl = self._ttl
        account = action_account_key(first.account_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(keys.answer, result.answer, ex=ttl)
        if result.record is not None:
            pipe.rpush(keys.history, orjson.dumps(result.record))
        if result.context:
            pipe.set(keys.context, orjson.dumps(result.context), ex=ttl, nx=True)
        pipe.hincrby(keys.size, "bytes", kept_bytes(result, new_context) - reserved)
        for key in (keys.history, keys.context, keys.size, keys.owner, account):
            pipe.expire(key, ttl)
        pipe.zadd(account, {keys.interaction_id: time.time() + ttl}, xx=True)
        pipe.delete(keys.lock)
        try:
            await pipe.execute()
        except _REDIS_ERRORS as exc:
            # The user still gets this answer; a retry of the step would run the handler again.
            logger.warning("could not store an action step's answer: %s", type(exc).__name__)

    async def _release(self, keys: _Keys, reserved: int, steps: int) -> None:
        """Give back the lock and what the step reserved (a step that ran keeps counting as one)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(keys.size, "bytes", -reserved)
        if steps:
            pipe.hincrby(keys.size, "steps", -steps)
        pipe.delete(keys.lock)
        try:
            await pipe.execute()
        except _REDIS_ERRORS:
            pass  # the lock expires on its own within lock_ttl; the counts expire with the interaction


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")
