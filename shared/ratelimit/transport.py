"""The limiter at httpx's public transport seam: `RateLimitTransport` (async) and `SyncRateLimitTransport`
wrap the transport that sends, spend the shared budget before a Frame.io call, learn from its answer,
and turn a 429 into `RateLimited` (so the SDK never retries it behind the kit's back, and nobody sees a
429 as an ordinary HTTP error).

`limited_client_options()` gives what a kit-built `httpx.AsyncClient` passes: the wrapped transport and,
because httpx ignores proxy variables once a transport is given, the environment's proxies as wrapped
mounts (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY hosts go direct).
"""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx

from shared.errors import RateLimited
from shared.ratelimit.endpoints import budget_of
from shared.ratelimit.limiter import async_limiter, sync_limiter


class RateLimitTransport(httpx.AsyncBaseTransport):
    """Sends through `inner` (default `httpx.AsyncHTTPTransport()`), within the shared budget."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        budget = budget_of(request.method, request.url.path, request.headers.get("authorization"))
        limiter = async_limiter() if budget is not None else None
        grant = await limiter.acquire(budget) if limiter is not None and budget is not None else None
        response = await self._inner.handle_async_request(request)
        if budget is None:
            return response
        if limiter is not None:
            try:
                await limiter.answered(budget, grant, response.status_code, response.headers)
            except RateLimited:
                await response.aclose()  # back to the pool: nobody reads a 429's body
                raise
        elif response.status_code == 429:
            await response.aclose()
            raise _unlimited_429(response, budget.endpoint)
        return response

    async def aclose(self) -> None:
        # The limiter (one per loop, shared by every client on it) outlives this client.
        await self._inner.aclose()


class SyncRateLimitTransport(httpx.BaseTransport):
    """The same for `httpx.Client` (blocking: waits for budget with `time.sleep`)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        budget = budget_of(request.method, request.url.path, request.headers.get("authorization"))
        limiter = sync_limiter() if budget is not None else None
        grant = limiter.acquire(budget) if limiter is not None and budget is not None else None
        response = self._inner.handle_request(request)
        if budget is None:
            return response
        if limiter is not None:
            try:
                limiter.answered(budget, grant, response.status_code, response.headers)
            except RateLimited:
                response.close()
                raise
        elif response.status_code == 429:
            response.close()
            raise _unlimited_429(response, budget.endpoint)
        return response

    def close(self) -> None:
        self._inner.close()


def _unlimited_429(response: httpx.Response, endpoint: str) -> RateLimited:
    """A 429 with the limiter off (FRAMEIO_KIT_RATE_LIMIT=off): still RateLimited, after the window it names."""
    try:
        window = float(response.headers.get("x-ratelimit-window", "1000")) / 1000
    except ValueError:
        window = 1.0
    return RateLimited(window, endpoint=endpoint, answered_429=True)


def limited_client_options() -> dict[str, Any]:
    """`transport=` and `mounts=` for a kit-built `httpx.AsyncClient`: every request, proxied or not,
    goes through the limiter."""
    return {"transport": RateLimitTransport(), "mounts": _proxy_mounts(urllib.request.getproxies()) or None}


def _proxy_mounts(proxies: dict[str, str]) -> dict[str, httpx.AsyncBaseTransport | None]:
    """The environment's proxies as httpx reads them when no transport is given, each wrapped."""
    no_proxy = [h.strip() for h in proxies.get("no", "").split(",") if h.strip()]
    if "*" in no_proxy:
        return {}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        url = proxies.get(scheme)
        if url:
            url = url if "://" in url else f"http://{url}"
            mounts[f"{scheme}://"] = RateLimitTransport(httpx.AsyncHTTPTransport(proxy=url))
    if mounts:
        for host in no_proxy:  # None: no proxy, the client's own (limited) transport
            if "://" in host:
                mounts[host] = None
            elif host.lower() == "localhost" or host.replace(".", "").isdigit():
                mounts[f"all://{host}"] = None
            elif ":" in host:
                mounts[f"all://[{host}]"] = None
            else:
                mounts[f"all://*{host}"] = None
    return mounts
