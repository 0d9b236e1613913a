"""`Client`: the official `frameio` V4 SDK client, with an `.experimental` sibling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from frameio import AsyncFrameio

from shared import tracing
from shared.ratelimit.transport import limited_client_options

_EXPERIMENTAL_HEADERS = {"api-version": "experimental"}


class Client(AsyncFrameio):
    """Asynchronous HTTP client for interacting with the Frame.io v4 API.

    Both clients share one `httpx.AsyncClient`; `close()` releases it. Its calls spend the deployment's
    shared rate budget (docs/limits.md): a call waits up to FRAMEIO_KIT_RATE_LIMIT_MAX_WAIT for it, else
    raises `RateLimited`, as does a 429. A client passed as `httpx_client` is used as it is: give it
    `transport=RateLimitTransport()` to share the budget. `async_token` lets a
    token come from a coroutine (the SDK still calls the sync `token`, so a placeholder is
    passed for it when only `async_token` is given).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: str | Callable[[], str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        follow_redirects: bool | None = True,
        async_token: Callable[[], Awaitable[str]] | None = None,
        httpx_client: httpx.AsyncClient | None = None,
    ) -> None:
        if token is None and async_token is None:
            raise ValueError("Client needs a token (or async_token)")
        if base_url is None:
            from shared.settings import get_settings

            base_url = get_settings().api_url  # FRAMEIO_KIT_API_URL; None keeps the SDK's https://api.frame.io
        self._owns_http = httpx_client is None
        self._http = httpx_client or httpx.AsyncClient(
            timeout=timeout if timeout is not None else 60.0,
            follow_redirects=bool(follow_redirects),
            event_hooks=tracing.client_event_hooks() if tracing.ACTIVE else None,
            **limited_client_options(),  # the shared rate budget (docs/limits.md)
        )
        sync_token: str | Callable[[], str] = token if token is not None else "unused"
        super().__init__(
            base_url=base_url,
            token=sync_token,
            headers=headers,
            async_token=async_token,
            timeout=timeout,
            follow_redirects=follow_redirects,
            httpx_client=self._http,
        )
        self._experimental = AsyncFrameio(
            base_url=base_url,
            token=sync_token,
            headers={**_EXPERIMENTAL_HEADERS, **(headers or {})},
            async_token=async_token,
            timeout=timeout,
            follow_redirects=follow_redirects,
            httpx_client=self._http,
        )

    @property
    def experimental(self) -> AsyncFrameio:
        """Endpoints in beta, called with the `api-version: experimental` header."""
        return self._experimental

    async def close(self) -> None:
        """Gracefully closes the underlying httpx.AsyncClient session."""
        if self._owns_http and not self._http.is_closed:
            await self._http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
