"""The shared rate budget per (account, token identity, endpoint) in Redis, spent before each Frame.io
call and corrected by what Frame.io answers, so every ingress and worker process of a deployment draws on
one budget.

Each budget keeps a log of its calls' send times: a call may go when fewer than `limit` calls were sent in
the window (plus slack) before it. Never more than `limit` calls in any window is stricter than Frame.io's
leaky bucket (which after a quiet spell takes a second window's worth at once), so what the limiter lets
through Frame.io accepts, and a burst is spread instead of answered 429.

One script call before a call (acquire.lua: reserve a time at most FRAMEIO_KIT_RATE_LIMIT_MAX_WAIT ahead,
or refuse with the wait), a second only when an answer says something the budget did not know (learn.lua:
a new limit or window, more calls in Frame.io's bucket than in our log, a 429). Redis is on the side of
the call, not in its way: when it does not answer, the call goes out unthrottled (logged once a minute).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import redis
import redis.asyncio

from shared.context import current_handler
from shared.errors import RateLimited
from shared.ratelimit.defaults import default_limit
from shared.ratelimit.endpoints import Budget
from shared.redis_client import async_client, sync_client
from shared.redis_keys import rate_limit_endpoint_key, rate_limit_key, rate_limit_log_key
from shared.settings import Settings, get_settings

logger = logging.getLogger("frameio_kit.ratelimit")

_HEAD = resources.files("shared.ratelimit").joinpath("bucket.lua").read_text(encoding="utf-8")
ACQUIRE_LUA = _HEAD + resources.files("shared.ratelimit").joinpath("acquire.lua").read_text(encoding="utf-8")
LEARN_LUA = _HEAD + resources.files("shared.ratelimit").joinpath("learn.lua").read_text(encoding="utf-8")

SLACK_MS = 100
"""Added to every window (or SLACK_SHARE of it, the larger): calls spaced by exactly the window would
arrive closer than that whenever an earlier one is delayed on its way to Frame.io."""
SLACK_SHARE = 0.05
BUDGET_TTL_MS = 86_400_000
"""A budget idle for a day is forgotten (tokens rotate; the endpoint's learned limit stays a week)."""
ENDPOINT_TTL_MS = 7 * 86_400_000
LATE = 0.03
LATE_RETRIES = 2
"""A call woken more than LATE seconds after its reserved time asks for a new one (at most LATE_RETRIES
times; its old one stays spent): sent late, it would arrive together with the calls reserved after it."""
PROBE_MS = 1000
"""While nobody has learned a budget's limit, its first call (the probe) holds the others back until its
answer's headers are learned, at most this long: calls reserved under a guessed limit cannot be recalled."""

Throttle = Literal["waited", "refused", "429"]
Observer = Callable[[Throttle, str], None]
"""Told (kind, handler) of every throttled call: the process's metrics (workers/ and ingress/ metrics.py)."""

_observers: list[Observer] = []
_last_outage_log = 0.0
_waiters_per_budget: int | None = None


def limit_waiters(per_budget: int | None) -> None:
    """At most `per_budget` calls of one budget wait for it at once in this process (None: no limit); the
    others are refused at once unless the budget has room now. Workers set it: a waiting call holds a
    worker slot, and a crowd of them would starve every other account's jobs of slots, while a refused
    job comes back (deferred) when the budget has room for it."""
    global _waiters_per_budget
    _waiters_per_budget = per_budget


def observe_throttles(observer: Observer) -> None:
    """Count throttled calls: `observer(kind, handler)` for each wait, refusal and 429."""
    if observer not in _observers:
        _observers.append(observer)


def _notify(kind: Throttle) -> None:
    handler = current_handler()
    for observer in _observers:
        observer(kind, handler)


@dataclass(frozen=True, slots=True)
class Grant:
    """A reserved call: sent `wait` seconds from the reservation, under `limit` calls per `window` ms."""

    wait: float
    limit: int
    window: int
    logged: int
    probe: bool = False

    def needs_learning(self, limit: int, window: int, remaining: int | None) -> bool:
        """Whether an answer says more than the budget knew: another limit or window, or more calls in
        Frame.io's bucket than in our log (another client of the same user spent them)."""
        if limit != self.limit or window != self.window:
            return True
        return remaining is not None and limit - remaining > self.logged


@dataclass(frozen=True, slots=True)
class Answer:
    """The x-ratelimit-* headers of one answer (None: absent or not a number)."""

    limit: int | None
    remaining: int | None
    window: int | None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Answer:
        return cls(
            _int(headers.get("x-ratelimit-limit")),
            _int(headers.get("x-ratelimit-remaining")),
            _int(headers.get("x-ratelimit-window")),
        )


def _int(value: str | None) -> int | None:
    try:
        number = int(float(value)) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


def _keys(budget: Budget) -> tuple[str, str, str]:
    return (
        rate_limit_key(budget.account, budget.identity, budget.endpoint),
        rate_limit_endpoint_key(budget.endpoint),
        rate_limit_log_key(budget.account, budget.identity, budget.endpoint),
    )


def _head_args(budget: Budget) -> list[Any]:
    limit, window = default_limit(budget.method, budget.template)
    return [limit, window, SLACK_MS, SLACK_SHARE, BUDGET_TTL_MS]


OUTAGE_PAUSE = 5.0
"""After Redis failed to answer, calls go out without asking it for this long: an unreachable Redis must
not add its connect timeout to every Frame.io call."""
_redis_down_until = 0.0


def _redis_down() -> bool:
    return time.monotonic() < _redis_down_until


def _outage(exc: Exception) -> None:
    """Redis did not answer: the call goes out unthrottled (Frame.io's 429 still raises RateLimited)."""
    global _last_outage_log, _redis_down_until
    now = time.monotonic()
    _redis_down_until = now + OUTAGE_PAUSE
    if now - _last_outage_log > 60:
        _last_outage_log = now
        logger.warning("rate limiter: Redis unavailable (%s); Frame.io calls go out unthrottled", type(exc).__name__)


class _Rules:
    """What both limiters share: the arguments of the two scripts, what their answers mean, and how many
    calls of one budget this process lets wait at once."""

    def __init__(self, max_wait: float, stay_away: float) -> None:
        self.max_wait = max_wait
        self.stay_away_ms = int(stay_away * 1000)
        self._waiting: dict[str, int] = {}
        self._lock = threading.Lock()

    def take_waiter(self, budget: Budget) -> float:
        """The longest this call may wait: FRAMEIO_KIT_RATE_LIMIT_MAX_WAIT while fewer than the process's
        waiters per budget wait (`limit_waiters`), else 0 (sent only if the budget has room now). A call
        that got a non-zero answer must `release_waiter` after its wait."""
        if _waiters_per_budget is None:
            return self.max_wait
        key = budget.key
        with self._lock:
            if self._waiting.get(key, 0) >= _waiters_per_budget:
                return 0.0
            self._waiting[key] = self._waiting.get(key, 0) + 1
        return self.max_wait

    def release_waiter(self, budget: Budget) -> None:
        if _waiters_per_budget is None:
            return
        key = budget.key
        with self._lock:
            left = self._waiting.get(key, 1) - 1
            if left > 0:
                self._waiting[key] = left
            else:
                self._waiting.pop(key, None)

    def acquire_args(self, budget: Budget, max_wait: float, waited: float) -> list[Any]:
        return [*_head_args(budget), max(0, int((max_wait - waited) * 1000)), PROBE_MS, self.stay_away_ms]

    def grant(self, budget: Budget, raw: list[Any], max_wait: float, waited: float) -> Grant | float | RateLimited:
        """The reservation, the seconds to wait before asking again (a probe is out), or the refusal."""
        status, wait_ms, limit, window, logged = (int(x) for x in raw)
        if status == 2:
            if waited + wait_ms / 1000 > max_wait:
                return RateLimited(PROBE_MS / 1000, endpoint=budget.endpoint)
            return wait_ms / 1000
        if status == 0:
            return RateLimited(wait_ms / 1000, endpoint=budget.endpoint)
        if wait_ms > 0 or waited > 0:
            _notify("waited")
        return Grant(wait_ms / 1000, limit, window, logged, probe=status == 3)

    def learn_args(self, budget: Budget, grant: Grant | None, answer: Answer, status: int) -> list[Any] | None:
        """The learn.lua arguments, or None when the answer teaches nothing new."""
        remaining = 0 if status == 429 else answer.remaining
        probe = grant is not None and grant.probe
        if answer.limit and answer.window:
            limit, window = answer.limit, answer.window
        elif status == 429 or probe:
            # No headers: what the budget went by stands (the documented default ends a probe).
            limit, window = (grant.limit, grant.window) if grant else default_limit(budget.method, budget.template)
        else:
            return None
        if status != 429 and not probe and grant is not None and not grant.needs_learning(limit, window, remaining):
            return None
        return [*_head_args(budget), limit, window, -1 if remaining is None else remaining, ENDPOINT_TTL_MS]

    def refusal(self, budget: Budget, grant: Grant | None, answer: Answer) -> RateLimited:
        """A 429: come back after the window (Frame.io sends no Retry-After)."""
        _notify("429")
        window = answer.window or (grant.window if grant else default_limit(budget.method, budget.template)[1])
        return RateLimited(window / 1000, endpoint=budget.endpoint, answered_429=True)


class AsyncRateLimiter:
    """The budget on an event loop (asyncio Redis client); one per loop, from `async_limiter()`."""

    def __init__(self, client: redis.asyncio.Redis, max_wait: float, stay_away: float) -> None:
        self._redis = client
        self._rules = _Rules(max_wait, stay_away)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._learn = client.register_script(LEARN_LUA)

    async def acquire(self, budget: Budget) -> Grant | None:
        """Reserve one call and sleep until it is due; raises RateLimited when that is further away than
        the longest wait. None when Redis did not answer (send anyway)."""
        if _redis_down():
            return None
        rules = self._rules
        max_wait = rules.take_waiter(budget)
        holding = max_wait > 0
        try:
            waited, late = 0.0, 0
            while True:
                args = rules.acquire_args(budget, max_wait, waited)
                try:
                    raw = await self._acquire(keys=_keys(budget), args=args)
                except (redis.RedisError, OSError) as exc:
                    _outage(exc)
                    return None
                asked = time.monotonic()
                grant = rules.grant(budget, raw, max_wait, waited)
                if isinstance(grant, RateLimited):
                    if not holding and rules.max_wait > 0:
                        max_wait = rules.take_waiter(budget)  # a waiter's place may have freed up since
                        holding = max_wait > 0
                        if holding:
                            continue
                    _notify("refused")
                    raise grant
                if not isinstance(grant, Grant):
                    await asyncio.sleep(grant)
                    waited += grant
                    continue
                if grant.wait > 0:
                    await asyncio.sleep(grant.wait)
                    if time.monotonic() - asked - grant.wait > LATE and late < LATE_RETRIES:
                        late += 1  # woken late: sent now, it would crowd the next reserved calls
                        continue
                return grant
        finally:
            if holding:
                rules.release_waiter(budget)

    async def answered(self, budget: Budget, grant: Grant | None, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer's headers; a 429 raises RateLimited (after learning)."""
        answer = Answer.of(headers)
        args = self._rules.learn_args(budget, grant, answer, status)
        if args is not None and not _redis_down():
            try:
                await self._learn(keys=_keys(budget), args=args)
            except (redis.RedisError, OSError) as exc:
                _outage(exc)
        if status == 429:
            raise self._rules.refusal(budget, grant, answer)

    async def aclose(self) -> None:
        await self._redis.aclose()


class SyncRateLimiter:
    """The same budget for blocking clients (`httpx.Client`), with a thread-safe Redis pool."""

    def __init__(self, client: redis.Redis, max_wait: float, stay_away: float) -> None:
        self._redis = client
        self._rules = _Rules(max_wait, stay_away)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._learn = client.register_script(LEARN_LUA)

    def acquire(self, budget: Budget) -> Grant | None:
        if _redis_down():
            return None
        rules = self._rules
        max_wait = rules.take_waiter(budget)
        holding = max_wait > 0
        try:
            waited, late = 0.0, 0
            while True:
                try:
                    raw = self._acquire(keys=_keys(budget), args=rules.acquire_args(budget, max_wait, waited))
                except (redis.RedisError, OSError) as exc:
                    _outage(exc)
                    return None
                asked = time.monotonic()
                grant = rules.grant(budget, raw, max_wait, waited)
                if isinstance(grant, RateLimited):
                    if not holding and rules.max_wait > 0:
                        max_wait = rules.take_waiter(budget)
                        holding = max_wait > 0
                        if holding:
                            continue
                    _notify("refused")
                    raise grant
                if not isinstance(grant, Grant):
                    time.sleep(grant)
                    waited += grant
                    continue
                if grant.wait > 0:
                    time.sleep(grant.wait)
                    if time.monotonic() - asked - grant.wait > LATE and late < LATE_RETRIES:
                        late += 1
                        continue
                return grant
        finally:
            if holding:
                rules.release_waiter(budget)

    def answered(self, budget: Budget, grant: Grant | None, status: int, headers: Mapping[str, str]) -> None:
        answer = Answer.of(headers)
        args = self._rules.learn_args(budget, grant, answer, status)
        if args is not None and not _redis_down():
            try:
                self._learn(keys=_keys(budget), args=args)
            except (redis.RedisError, OSError) as exc:
                _outage(exc)
        if status == 429:
            raise self._rules.refusal(budget, grant, answer)

    def close(self) -> None:
        self._redis.close()


# -- one limiter per event loop (async) and per process (sync) ----------------------------------------

_async_limiters: dict[asyncio.AbstractEventLoop, AsyncRateLimiter] = {}
_sync_limiter: tuple[str, SyncRateLimiter] | None = None


def deferral_cap(settings: Settings) -> float:
    """The longest a worker defers a rate-limited job at a time: it waits for its countdown in the worker,
    unacknowledged, and must be running again well before the visibility timeout hands it out a second
    time; deferrals come in crowds, so a quarter of it (and no more than the retry delay cap) leaves the
    rest for the wait for a free slot."""
    return min(settings.retry_delay_cap, settings.visibility_timeout / 4)


def async_limiter() -> AsyncRateLimiter | None:
    """The running loop's limiter (built on first use from the settings), None when the limiter is off.
    Every client on the loop shares it: one Redis pool, not one per `Client`."""
    settings = get_settings()
    if not settings.rate_limit:
        return None
    loop = asyncio.get_running_loop()
    limiter = _async_limiters.get(loop)
    if limiter is None:
        for old in [x for x in _async_limiters if x.is_closed()]:
            del _async_limiters[old]
        limiter = AsyncRateLimiter(
            async_client(settings.redis_url, "limiter"), settings.rate_limit_max_wait, deferral_cap(settings)
        )
        _async_limiters[loop] = limiter
    return limiter


def sync_limiter() -> SyncRateLimiter | None:
    """The process's blocking limiter, None when the limiter is off."""
    global _sync_limiter
    settings = get_settings()
    if not settings.rate_limit:
        return None
    if _sync_limiter is None or _sync_limiter[0] != settings.redis_url:
        client = sync_client(settings.redis_url, "limiter")
        limiter = SyncRateLimiter(client, settings.rate_limit_max_wait, deferral_cap(settings))
        _sync_limiter = (settings.redis_url, limiter)
    return _sync_limiter[1]


async def aclose_limiter() -> None:
    """Close the running loop's limiter (its Redis connections), at the end of the loop's life."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    limiter = _async_limiters.pop(loop, None)
    if limiter is not None:
        await limiter.aclose()
