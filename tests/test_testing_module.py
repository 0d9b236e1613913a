"""`frameio_kit.testing`, the test tools integration authors get: each tool doing what its docs say."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest
import redis

from frameio_kit import ActionEvent, AnyEvent, App, Form, Message, Middleware, NextFunc, TextField, WebhookEvent
from frameio_kit.testing import (
    WEBHOOK_TYPES,
    IngressClient,
    RedisServer,
    action_payload,
    free_port,
    run_webhook,
    webhook_payload,
)
from shared.core.ui import AnyResponse
from shared.settings import Settings
from tests.helpers import queued as queued_messages

HOOK_SECRET = "testing-module-webhook-secret"
ACTION_SECRET = "testing-module-action-secret"


class Trace(Middleware):
    """Records the order in which middleware and handler run."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def __call__(self, event: AnyEvent, next: NextFunc) -> AnyResponse:
        self.calls.append(f"before {event.type}")
        result = await next(event)
        self.calls.append(f"after {event.type}")
        return result


def review_app(calls: list[str]) -> App:
    app = App(middleware=[Trace(calls)])

    @app.on_webhook("file.ready", secret=HOOK_SECRET)
    async def on_ready(event: WebhookEvent) -> None:
        calls.append(f"handler {event.resource_id} key={bool(event.idempotency_key)}")
        if event.resource_id == "broken":
            raise RuntimeError("handler failed")

    @app.on_action("review.request", name="Review", description="Request a review", secret=ACTION_SECRET)
    async def on_review(event: ActionEvent) -> Form | Message:
        calls.append(f"action step {len(event.form_history) + 1}")
        if event.data is None:
            return Form(title="Reviewer", fields=[TextField(label="Reviewer", name="reviewer")])
        if "notes" not in event.data:
            return Form(title="Notes", fields=[TextField(label="Notes", name="notes")])
        answers = event.answers
        return Message(title="Requested", description=f"{answers['reviewer']}: {answers['notes']}")

    return app


def test_webhook_runs_through_the_middleware_chain_in_process():
    calls: list[str] = []
    app = review_app(calls)

    asyncio.run(run_webhook(app, webhook_payload("file.ready", resource_id="f-1")))

    assert calls == ["before file.ready", "handler f-1 key=True", "after file.ready"]


def test_in_process_webhook_raises_what_the_handler_raises_and_refuses_unknown_types():
    app = review_app([])
    with pytest.raises(RuntimeError, match="handler failed"):
        asyncio.run(run_webhook(app, webhook_payload("file.ready", resource_id="broken")))
    with pytest.raises(LookupError, match=r"comment\.created"):
        asyncio.run(run_webhook(app, webhook_payload("comment.created")))


def test_signed_request_is_accepted_by_the_in_process_ingress(redis_server, redis_client):
    app = review_app([])
    settings = Settings(redis_url=redis_server.url)

    async def scenario() -> tuple[int, int, int]:
        async with IngressClient(app, settings=settings) as ingress:
            accepted = await ingress.post(webhook_payload("file.ready", resource_id="queued-1"))
            forged = await ingress.post(webhook_payload("file.ready"), secret="not-the-secret")
            stale = await ingress.post(webhook_payload("file.ready"), timestamp=1_000_000)
            return accepted.status_code, forged.status_code, stale.status_code

    assert asyncio.run(scenario()) == (202, 401, 401)
    queued = queued_messages(redis_client, settings.queue)
    assert len(queued) == 1 and b"queued-1" in queued[0]


def test_multi_step_action_is_driven_without_redis():
    calls: list[str] = []
    app = review_app(calls)
    # Nothing listens on this port: the in-memory action state must be all the steps need.
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")

    async def scenario() -> list[dict[str, Any] | None]:
        async with IngressClient(app, settings=settings) as ingress:
            session = ingress.action("review.request", resource_id="file-9")
            return [
                await session.start(),
                await session.submit({"reviewer": "ana"}),
                await session.submit({"notes": "check the grade"}),
            ]

    first, second, last = asyncio.run(scenario())
    assert first is not None and first["title"] == "Reviewer"
    assert second is not None and second["title"] == "Notes"
    assert last == {"title": "Requested", "description": "ana: check the grade"}
    assert [c for c in calls if c.startswith("action")] == ["action step 1", "action step 1", "action step 2"]


def test_action_step_refused_by_the_ingress_raises():
    app = review_app([])

    async def scenario() -> None:
        async with IngressClient(app, settings=Settings()) as ingress:
            await ingress.action("review.request", secret="wrong").start()

    with pytest.raises(httpx.HTTPStatusError) as caught:
        asyncio.run(scenario())
    assert caught.value.response.status_code == 401


def test_redis_server_starts_restarts_on_its_port_and_stops():
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        server.stop()
        assert not server.pings()
        server.start()
        assert client.ping()
        client.close()
        workdir = server.workdir
    assert not server.pings()
    assert not workdir.exists()


def test_pytest_plugin_fixture_is_a_running_server(frameio_redis):
    assert frameio_redis.pings()
    assert redis.Redis.from_url(frameio_redis.db_url(2)).ping()


def test_payload_factories_match_the_event_models():
    for event_type in WEBHOOK_TYPES:
        event = WebhookEvent.model_validate(webhook_payload(event_type, resource_id="r-1"))
        assert (event.type, event.resource_id) == (event_type, "r-1")
    assert WebhookEvent.model_validate(webhook_payload("comment.created")).resource.type == "comment"
    action = ActionEvent.model_validate(action_payload("my.action", interaction_id="i-1", data={"a": 1}))
    assert (action.interaction_id, action.data) == ("i-1", {"a": 1})


def test_testing_module_imports_without_pytest():
    code = "import sys; sys.modules['pytest'] = None; import frameio_kit.testing; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
