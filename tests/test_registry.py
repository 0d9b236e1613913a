"""App registration: secret precedence, the ValueError without a secret source, middleware order."""

from __future__ import annotations

import asyncio

import pytest

from frameio_kit import ActionEvent, AnyEvent, App, Message, Middleware, NextFunc, WebhookEvent
from shared.app import registry
from shared.settings import get_settings
from tests.helpers import action_payload, webhook_payload

EVENT = WebhookEvent.model_validate(webhook_payload("r"))
ACTION = ActionEvent.model_validate(action_payload("i"))


def resolve(app: App, event_type: str, event: AnyEvent = EVENT) -> str | None:
    spec = app.lookup(event_type)
    assert spec is not None
    return asyncio.run(app.resolve_secret(spec, event))


class AppResolver:
    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        return "from-app-resolver"

    async def get_action_secret(self, event: ActionEvent) -> str:
        return "action-from-app-resolver"


async def decorator_resolver(event: WebhookEvent) -> str:
    return "from-decorator-resolver"


async def handler(event: AnyEvent) -> None:
    return None


def test_registration_without_any_secret_source_raises():
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        App().on_webhook("file.ready")(handler)
    with pytest.raises(ValueError, match="CUSTOM_ACTION_SECRET"):
        App().on_action("a.b", name="n", description="d")(handler)


def test_workers_register_without_secrets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(registry, "_secrets_required", False)
    app = App()
    app.on_webhook("file.ready")(handler)
    assert app.lookup("file.ready") is not None


def test_secret_precedence(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "from-env")
    get_settings.cache_clear()
    app = App(secret_resolver=AppResolver())
    app.on_webhook("explicit", secret="explicit-secret")(handler)
    app.on_webhook("decorator", secret=decorator_resolver)(handler)
    app.on_webhook("app-level")(handler)
    assert resolve(app, "explicit") == "explicit-secret"
    assert resolve(app, "decorator") == "from-decorator-resolver"
    assert resolve(app, "app-level") == "from-app-resolver"

    plain = App()
    plain.on_webhook("env")(handler)
    assert resolve(plain, "env") == "from-env"


def test_action_secret_comes_from_its_own_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", "action-env")
    get_settings.cache_clear()
    app = App()
    app.on_action("a.b", name="n", description="d")(handler)
    assert resolve(app, "a.b", ACTION) == "action-env"
    assert resolve(_app_with("x"), "x", ACTION) == "action-from-app-resolver"


def _app_with(event_type: str) -> App:
    app = App(secret_resolver=AppResolver())
    app.on_action(event_type, name="n", description="d")(handler)
    return app


def test_one_handler_for_several_event_types():
    app = App()
    app.on_webhook(["file.ready", "file.created"], secret="s")(handler)
    assert app.lookup("file.ready") is app.lookup("file.ready")
    assert {"file.ready", "file.created"} <= set(app.webhook_handlers)


def test_sync_handlers_are_refused():
    def not_async(event: WebhookEvent) -> None:
        return None

    with pytest.raises(TypeError, match="async"):
        App().on_webhook("file.ready", secret="s")(not_async)  # type: ignore[type-var]


def test_middleware_runs_in_order_and_dispatches_by_kind():
    calls: list[str] = []

    class Outer(Middleware):
        async def __call__(self, event: AnyEvent, next: NextFunc):
            calls.append("outer:before")
            result = await super().__call__(event, next)
            calls.append("outer:after")
            return result

        async def on_webhook(self, event: WebhookEvent, next: NextFunc):
            calls.append("outer:webhook")
            return await next(event)

        async def on_action(self, event: ActionEvent, next: NextFunc):
            calls.append("outer:action")
            return await next(event)

    class Inner(Middleware):
        async def on_webhook(self, event: WebhookEvent, next: NextFunc):
            calls.append("inner:webhook")
            return await next(event)

    class Replacing(Middleware):
        async def __call__(self, event: AnyEvent, next: NextFunc):
            calls.append("replacing")
            return await next(event)

        async def on_webhook(self, event: WebhookEvent, next: NextFunc):
            calls.append("never")
            return await next(event)

    app = App(middleware=[Outer(), Inner(), Replacing()])

    @app.on_webhook("file.ready", secret="s")
    async def on_file(event: WebhookEvent) -> None:
        calls.append("handler")

    @app.on_action("a.b", name="n", description="d", secret="s")
    async def on_act(event: ActionEvent) -> Message:
        calls.append("action-handler")
        return Message(title="ok")

    asyncio.run(app.run(app.lookup("file.ready"), EVENT))  # type: ignore[arg-type]
    assert calls == ["outer:before", "outer:webhook", "inner:webhook", "replacing", "handler", "outer:after"]

    calls.clear()
    result = asyncio.run(app.run(app.lookup("a.b"), ACTION))  # type: ignore[arg-type]
    assert result == Message(title="ok")
    assert calls == ["outer:before", "outer:action", "replacing", "action-handler", "outer:after"]


def test_client_and_token_manager_need_configuration():
    with pytest.raises(RuntimeError, match="token"):
        _ = App().client
    with pytest.raises(RuntimeError, match="oauth"):
        _ = App().token_manager
    assert App(token="t").client is not None
