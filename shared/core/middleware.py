"""Middleware: cross-cutting code wrapped around every handler, in registration order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shared.core.events import ActionEvent, AnyEvent, WebhookEvent
from shared.core.ui import AnyResponse

NextFunc = Callable[[AnyEvent], Awaitable[AnyResponse]]
"""Type alias for the next function in the middleware chain."""


class Middleware:
    """Base class for creating middleware in Frame.io integrations.

    Override `__call__` for every event, or `on_webhook` / `on_action` for one kind. An
    overridden `__call__` that does not call `super().__call__` skips `on_webhook` and
    `on_action`. Webhook middleware runs in the worker, action middleware in the ingress.
    """

    async def __call__(self, event: AnyEvent, next: NextFunc) -> AnyResponse:
        """Runs for every event; by default dispatches to `on_webhook` or `on_action`."""
        if isinstance(event, WebhookEvent):
            return await self.on_webhook(event, next)
        if isinstance(event, ActionEvent):
            return await self.on_action(event, next)
        return await next(event)

    async def on_webhook(self, event: WebhookEvent, next: NextFunc) -> AnyResponse:
        """Runs only for webhook events."""
        return await next(event)

    async def on_action(self, event: ActionEvent, next: NextFunc) -> AnyResponse:
        """Runs only for custom action events."""
        return await next(event)


def build_chain(middleware: list[Middleware], handler: NextFunc) -> NextFunc:
    """Wrap `handler` so the first middleware in the list runs outermost."""
    chain = handler
    for mw in reversed(middleware):
        chain = _bind(mw, chain)
    return chain


def _bind(mw: Middleware, nxt: NextFunc) -> NextFunc:
    async def call(event: AnyEvent) -> AnyResponse:
        return await mw(event, nxt)

    return call
