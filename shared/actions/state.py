"""Per-interaction state of custom actions: the answers of earlier steps and each step's answer.

`run_step` runs a step once per (interaction, body): a retry gets the stored answer, a retry
arriving while the first run is in progress waits for it. `MemoryActionState` serves one ingress
process; `RedisActionState` several processes or replicas (FRAMEIO_KIT_ACTION_STATE=redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.core.events import ActionEvent, Project, Resource, User, Workspace
from shared.errors import ActionStateUnavailable, StepStillRunning
from shared.redis_keys import action_answer_key, action_context_key, action_history_key, action_lock_key
from shared.settings import Settings

logger = logging.getLogger(__name__)

_MAX_ANSWERS_PER_INTERACTION = 64
_POLL_INTERVAL = 0.05


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
    The stored context came from a verified call of the same interaction."""
    for name in CONTEXT_FIELDS:
        if name not in context or getattr(event, name):
            continue
        model = _CONTEXT_MODELS.get(name)
        setattr(event, name, model.model_validate(context[name]) if model is not None else context[name])
    return event


def step_key(body: bytes) -> str:
    """One step of an interaction: Frame.io retries a step with the same body."""
    return hashlib.sha256(body).hexdigest()


class ActionState(ABC):
    """Where the ingress keeps interactions; see the module docstring."""

    @abstractmethod
    async def run_step(self, interaction_id: str, step: str, compute: Compute, wait: float) -> StepOutcome:
        """The answer to `step`: stored, awaited from a run in progress (up to `wait` seconds,
        then StepStillRunning), or computed now and stored with its history record."""


@dataclass
class _Interaction:
    expires: float
    history: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] | None = None
    answers: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    running: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)


class MemoryActionState(ActionState):
    """In this process's memory: least recently used interactions beyond `max_interactions` are
    dropped, and an interaction expires `ttl` seconds after its last step."""

    def __init__(self, ttl: float, max_interactions: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_interactions
        self._clock = clock
        self._items: OrderedDict[str, _Interaction] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    async def run_step(self, interaction_id: str, step: str, compute: Compute, wait: float) -> StepOutcome:
        item = self._touch(interaction_id)
        if step in item.answers:
            return StepOutcome(item.answers[step], "replayed")
        running = item.running.get(step)
        if running is not None:
            try:
                return StepOutcome(await asyncio.wait_for(asyncio.shield(running), wait), "waited")
            except TimeoutError:
                raise StepStillRunning(f"step still running after {wait:.1f}s") from None
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume_exception)
        item.running[step] = future
        try:
            result = await compute(Interaction(list(item.history), dict(item.context or {})))
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else StepStillRunning("step cancelled"))
            raise
        finally:
            item.running.pop(step, None)
        item.answers[step] = result.answer
        while len(item.answers) > _MAX_ANSWERS_PER_INTERACTION:
            item.answers.popitem(last=False)
        if result.record is not None:
            item.history.append(result.record)
        if item.context is None and result.context:
            item.context = result.context
        future.set_result(result.answer)
        return StepOutcome(result.answer, "ran")

    def _touch(self, interaction_id: str) -> _Interaction:
        now = self._clock()
        self._expire(now)
        item = self._items.get(interaction_id)
        if item is None:
            item = self._items[interaction_id] = _Interaction(expires=now + self._ttl)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        self._items.move_to_end(interaction_id)
        item.expires = now + self._ttl
        return item

    def _expire(self, now: float) -> None:
        # Least recently used first: the oldest entries are the first to expire.
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest.expires > now or oldest.running:
                return
            self._items.popitem(last=False)


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _consume_exception(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()


class RedisActionState(ActionState):
    """In Redis, shared by every ingress process: a short lock per step (`lock_ttl`, longer than
    a handler may run) and polling of the stored answer for a retry that finds the lock taken."""

    def __init__(self, redis: Redis, ttl: int, lock_ttl: float) -> None:
        self._redis = redis
        self._ttl = ttl
        self._lock_ms = max(1, int(lock_ttl * 1000))

    async def run_step(self, interaction_id: str, step: str, compute: Compute, wait: float) -> StepOutcome:
        answer_key = action_answer_key(interaction_id, step)
        lock_key = action_lock_key(interaction_id, step)
        history_key = action_history_key(interaction_id)
        context_key = action_context_key(interaction_id)
        deadline = time.monotonic() + wait
        how: Literal["replayed", "waited"] = "replayed"
        while True:
            try:
                stored = await self._redis.get(answer_key)
                if stored is not None:
                    return StepOutcome(_as_bytes(stored), how)
                claimed = await self._redis.set(lock_key, b"1", nx=True, px=self._lock_ms)
                if claimed:
                    # The previous holder may have stored its answer between our GET and SET.
                    stored = await self._redis.get(answer_key)
                    if stored is not None:
                        await self._redis.delete(lock_key)
                        return StepOutcome(_as_bytes(stored), how)
                    raw_history = await self._redis.lrange(history_key, 0, -1)
                    raw_context = await self._redis.get(context_key)
            except (RedisError, OSError) as exc:
                raise ActionStateUnavailable(f"action state unavailable: {type(exc).__name__}") from exc
            if claimed:
                break
            how = "waited"
            if time.monotonic() >= deadline:
                raise StepStillRunning(f"step still running after {wait:.1f}s")
            await asyncio.sleep(_POLL_INTERVAL)
        try:
            context = orjson.loads(raw_context) if raw_context is not None else {}
            result = await compute(Interaction([orjson.loads(x) for x in raw_history], context))
        except BaseException:
            await self._release(lock_key)
            raise
        await self._store(answer_key, lock_key, history_key, context_key, result)
        return StepOutcome(result.answer, "ran")

    async def _store(
        self, answer_key: str, lock_key: str, history_key: str, context_key: str, result: StepResult
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(answer_key, result.answer, ex=self._ttl)
        if result.record is not None:
            pipe.rpush(history_key, orjson.dumps(result.record))
        if result.context:
            pipe.set(context_key, orjson.dumps(result.context), ex=self._ttl, nx=True)
        pipe.expire(history_key, self._ttl)
        pipe.expire(context_key, self._ttl)
        pipe.delete(lock_key)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            # The user still gets this answer; a retry of the step would run the handler again.
            logger.warning("could not store an action step's answer: %s", type(exc).__name__)

    async def _release(self, lock_key: str) -> None:
        try:
            await self._redis.delete(lock_key)
        except (RedisError, OSError):
            pass  # the lock expires on its own within lock_ttl


def build_action_state(settings: Settings, redis: Redis) -> ActionState:
    """The store FRAMEIO_KIT_ACTION_STATE selects."""
    if settings.action_state == "redis":
        return RedisActionState(redis, ttl=settings.action_state_ttl, lock_ttl=settings.action_timeout + 1.0)
    return MemoryActionState(ttl=settings.action_state_ttl, max_interactions=settings.action_state_max)
