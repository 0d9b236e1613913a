"""Frame.io's rate limits, shared by every process of a deployment (docs/limits.md): the documented
per-endpoint defaults, what a request's budget is, its log of calls in Redis and the httpx transports."""

from shared.ratelimit.endpoints import Budget, budget_of
from shared.ratelimit.limiter import (
    AsyncRateLimiter,
    SyncRateLimiter,
    aclose_limiter,
    async_limiter,
    observe_throttles,
    sync_limiter,
)
from shared.ratelimit.transport import RateLimitTransport, SyncRateLimitTransport, limited_client_options

__all__ = [
    "AsyncRateLimiter",
    "Budget",
    "RateLimitTransport",
    "SyncRateLimitTransport",
    "SyncRateLimiter",
    "aclose_limiter",
    "async_limiter",
    "budget_of",
    "limited_client_options",
    "observe_throttles",
    "sync_limiter",
]
