"""`App`: the registry of an integration's handlers, and the ASGI app that serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.app.registry import Registry
from shared.settings import get_settings

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send


class App(Registry):
    """The main application class for building Frame.io integrations.

    Register handlers with `on_webhook`, `on_action` and `on_action_job`. The object is also an
    ASGI app (`uvicorn myapp:app`): the ingress is built on its first call, so worker processes,
    which import the integration too, never load the web stack.
    """

    _asgi: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI call interface to delegate to the underlying Starlette app."""
        if self._asgi is None:
            from ingress.app import create_app

            self._asgi = create_app(self, get_settings())
        await self._asgi(scope, receive, send)
