"""Action state in one ingress process's memory (FRAMEIO_KIT_ACTION_STATE=memory).

Bounded three ways: `max_interactions` in all, `limits.account_quota` per account, and steps and
bytes per interaction. When full, the least recently used interaction of the account holding the
most goes first, so one account's flood never evicts another account's interactions.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.actions.admission import NO_OWNER, Owner, StateLimits, other_owner, over_quota
from shared.actions.steps import (
    MAX_ANSWERS_PER_INTERACTION,
    ActionState,
    Compute,
    Interaction,
    StepOutcome,
    StepResult,
    kept_bytes,
)
from shared.errors import StepStillRunning


@dataclass
class _Interaction:
    owner: Owner
    expires: float
    history: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] | None = None
    answers: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    running: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)
    steps: int = 0
    size: int = 0  # bytes kept (answers, history, context), plus what running steps reserved


class MemoryActionState(ActionState):
    """In this process's memory: an interaction expires `ttl` seconds after its last step; see the
    module docstring for the bounds."""

    def __init__(
        self,
        ttl: float,
        max_interactions: int,
        clock: Callable[[], float] = time.monotonic,
        limits: StateLimits | None = None,
    ) -> None:
        self._ttl = ttl
        self._max = max_interactions
        self._clock = clock
        self._limits = limits or StateLimits()
        self._items: OrderedDict[str, _Interaction] = OrderedDict()
        self._accounts: dict[str, OrderedDict[str, None]] = {}  # account -> its interactions, LRU first

    def __len__(self) -> int:
        return len(self._items)

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
        item = self._admit(interaction_id, owner)
        if step in item.answers:
            return StepOutcome(item.answers[step], "replayed")
        running = item.running.get(step)
        if running is not None:
            try:
                return StepOutcome(await asyncio.wait_for(asyncio.shield(running), wait), "waited")
            except TimeoutError:
                raise StepStillRunning(f"step still running after {wait:.1f}s") from None
        self._limits.check_room(item.steps + 1, item.size + size)
        # Counted before the handler runs, so concurrent steps cannot together pass the limits.
        item.steps += 1
        item.size += size
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume_exception)
        item.running[step] = future
        try:
            result = await compute(Interaction(list(item.history), dict(item.context or {})))
        except BaseException as exc:
            item.size -= size
            future.set_exception(exc if isinstance(exc, Exception) else StepStillRunning("step cancelled"))
            raise
        finally:
            item.running.pop(step, None)
        self._keep(item, step, result, reserved=size)
        future.set_result(result.answer)
        return StepOutcome(result.answer, "ran")

    def _keep(self, item: _Interaction, step: str, result: StepResult, reserved: int) -> None:
        new_context = item.context is None and bool(result.context)
        item.size += kept_bytes(result, new_context) - reserved
        item.answers[step] = result.answer
        if result.record is not None:
            item.history.append(result.record)
        if new_context:
            item.context = result.context
        # Stored answers only serve retries, which come within seconds: the oldest make room.
        while len(item.answers) > MAX_ANSWERS_PER_INTERACTION or (
            item.size > self._limits.max_bytes and len(item.answers) > 1
        ):
            item.size -= len(item.answers.popitem(last=False)[1])

    def _admit(self, interaction_id: str, owner: Owner) -> _Interaction:
        """The interaction, created for `owner` if new; refused if another owner holds it."""
        now = self._clock()
        self._expire(now)
        item = self._items.get(interaction_id)
        if item is None:
            item = self._create(interaction_id, owner, now)
        else:
            conflict = owner.conflict(item.owner)
            if conflict is not None:
                raise other_owner(conflict)  # and the interaction is not kept alive by it
        self._items.move_to_end(interaction_id)
        self._accounts[item.owner.account_id].move_to_end(interaction_id)
        item.expires = now + self._ttl
        return item

    def _create(self, interaction_id: str, owner: Owner, now: float) -> _Interaction:
        held = self._accounts.get(owner.account_id)
        if held is not None and len(held) >= self._limits.account_quota:
            raise over_quota(self._limits.account_quota)
        while len(self._items) >= self._max:
            self._evict()
        item = self._items[interaction_id] = _Interaction(owner=owner, expires=now + self._ttl)
        self._accounts.setdefault(owner.account_id, OrderedDict())[interaction_id] = None
        return item

    def _evict(self) -> None:
        largest = max(self._accounts.values(), key=len)
        self._drop(next(iter(largest)))

    def _drop(self, interaction_id: str) -> None:
        item = self._items.pop(interaction_id)
        held = self._accounts[item.owner.account_id]
        del held[interaction_id]
        if not held:
            del self._accounts[item.owner.account_id]

    def _expire(self, now: float) -> None:
        # Least recently used first: the oldest entries are the first to expire.
        while self._items:
            interaction_id, oldest = next(iter(self._items.items()))
            if oldest.expires > now or oldest.running:
                return
            self._drop(interaction_id)


def _consume_exception(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()
