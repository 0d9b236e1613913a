"""An integration run in this process, with no worker and no network: a webhook through the
middleware chain as a worker runs it, and the real ingress app over ASGI for signed requests
and multi-step custom actions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import httpx

from frameio_kit.testing.payloads import action_payload, encode_body
from frameio_kit.testing.signing import sign_request
from ingress.app import create_app
from shared.app.registry import Registry
from shared.core.events import WebhookEvent
from shared.core.ui import AnyResponse
from shared.jobs.contract import idempotency_key
from shared.settings import Settings, get_settings


async def run_webhook(app: Registry, payload: Mapping[str, Any] | bytes) -> AnyResponse:
    """Run the webhook handler `payload` is for through `app`'s middleware chain, as a worker
    would: same event (idempotency key, timestamp), same chain, the handler's exceptions raised
    as they are (a worker would retry them). No Redis, no Celery, no signature.
    """
    body = encode_body(payload)
    event = WebhookEvent.model_validate_json(body)
    spec = app.webhook_handlers.get(event.type)
    if spec is None:
        raise LookupError(f"no @app.on_webhook handler for {event.type!r}")
    event.with_idempotency_key(idempotency_key(event.type, body))
    event.timestamp = int(time.time())
    return await app.run(spec, event)


class IngressClient:
    """The real ingress for `app`, served in this process over ASGI, with requests signed for you.

        async with IngressClient(app) as ingress:
            response = await ingress.post(webhook_payload("file.ready"))
            form = await ingress.action("my_app.transcribe").start()

    Requests are signed with the handler's secret (its `secret=` string, else WEBHOOK_SECRET or
    CUSTOM_ACTION_SECRET); pass `secret=` where a resolver decides. Actions need no Redis with
    the default in-memory action state; webhooks are queued, so they need the Redis at REDIS_URL.
    """

    def __init__(self, app: Registry, *, settings: Settings | None = None) -> None:
        self.app = app
        self._web = create_app(app, settings or get_settings())
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self._web), base_url="http://ingress.test")
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> IngressClient:
        await self._stack.enter_async_context(self._web.router.lifespan_context(self._web))
        self._stack.push_async_callback(self._http.aclose)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def secret_for(self, event_type: str) -> str:
        """The secret the ingress verifies `event_type` with, when it is known without the event."""
        spec = self.app.lookup(event_type)
        secret = self.app.static_secret(spec) if spec is not None else None
        if secret is None:
            raise ValueError(f"no static secret for {event_type!r} (a resolver decides, or no handler): pass secret=")
        return secret

    async def post(
        self,
        payload: Mapping[str, Any] | bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST / with `payload` signed as Frame.io signs it; the ingress's answer, whatever its status."""
        if secret is None:
            event_type = payload.get("type") if isinstance(payload, Mapping) else None
            if not isinstance(event_type, str):
                raise ValueError("pass secret= for a payload without a string 'type'")
            secret = self.secret_for(event_type)
        body, signed = sign_request(payload, secret, timestamp=timestamp)
        return await self._http.post("/", content=body, headers={**signed, **(headers or {})})

    def action(self, event_type: str, *, secret: str | None = None, **fields: Any) -> ActionSession:
        """A new interaction with the custom action `event_type`; `fields` go to `action_payload`."""
        return ActionSession(self, event_type, secret=secret, **fields)


class ActionSession:
    """One interaction with a custom action, step by step, as a user clicking through its forms.

    Every step shares one `interaction_id`, so the ingress keeps the form history between them.
    Each step returns the answer's JSON (a Form or a Message) or None for an empty answer, and
    raises `httpx.HTTPStatusError` when the ingress refuses the request.
    """

    def __init__(self, ingress: IngressClient, event_type: str, *, secret: str | None = None, **fields: Any) -> None:
        self.event_type = event_type
        self.interaction_id: str = fields.pop("interaction_id", None) or str(uuid.uuid4())
        self.responses: list[httpx.Response] = []
        self._ingress = ingress
        self._secret = secret
        self._fields = fields

    async def start(self) -> dict[str, Any] | None:
        """The first call: the user picked the action (no `data`)."""
        return await self._step(None)

    async def submit(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """A form submission: `data` holds the submitted fields by name."""
        return await self._step(data)

    async def _step(self, data: Mapping[str, Any] | None) -> dict[str, Any] | None:
        payload = action_payload(self.event_type, interaction_id=self.interaction_id, data=data, **self._fields)
        response = await self._ingress.post(payload, secret=self._secret)
        self.responses.append(response)
        response.raise_for_status()
        if not response.content:
            return None
        answer: dict[str, Any] = response.json()
        return answer
