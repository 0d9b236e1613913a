"""The reference's public names import from frameio_kit, and its examples run as written.

Examples that need outside services run against stand-ins: the Frame.io API behind an
httpx.MockTransport, a dict for the reference's `db`.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

import frameio_kit
from frameio_kit import (
    ActionEvent,
    AnyEvent,
    AnyResponse,
    App,
    CheckboxField,
    Client,
    Form,
    LinkField,
    Message,
    Middleware,
    NextFunc,
    SelectField,
    SelectOption,
    TextareaField,
    TextField,
    WebhookEvent,
    get_user_token,
)
from shared.settings import get_settings
from tests.helpers import action_payload, webhook_payload

REFERENCE_NAMES = [
    "App",
    "SecretResolver",
    "Client",
    "Account",
    "ActionEvent",
    "Project",
    "Resource",
    "User",
    "WebhookEvent",
    "Workspace",
    "Middleware",
    "OAuthConfig",
    "CheckboxField",
    "Form",
    "LinkField",
    "Message",
    "SelectField",
    "SelectOption",
    "TextareaField",
    "TextField",
    "get_user_token",
    "verify_signature",
    "AnyEvent",
    "NextFunc",
    "AnyResponse",
]
# Names v0.0.10 exports that seed integrations import (issue 10, item 5).
SEED_NAMES = [
    "FormField",
    "WebhookSecretResolver",
    "ActionSecretResolver",
    "WebhookHandlerFunc",
    "ActionHandlerFunc",
    "ResourceType",
    "FrameioKitError",
]


@pytest.mark.parametrize("name", REFERENCE_NAMES + SEED_NAMES)
def test_every_reference_name_imports(name: str):
    assert getattr(frameio_kit, name) is not None
    assert name in frameio_kit.__all__


class FakeDb:
    """The reference's `db`: secrets looked up by account or resource."""

    class _Table:
        def __init__(self, secret: str) -> None:
            self._secret = secret

        async def get_secret(self, key: str) -> str:
            return f"{self._secret}:{key}"

    def __init__(self) -> None:
        self.webhooks = self._Table("wh")
        self.actions = self._Table("act")

    async def get_secret(self, key: str) -> str:
        return f"db:{key}"


db = FakeDb()


def test_on_webhook_examples(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "env-secret")
    get_settings.cache_clear()
    app = App()

    @app.on_webhook(event_type="file.ready", secret="your-secret")
    async def on_file_ready(event: WebhookEvent):
        pass

    async def resolve_secret(event: WebhookEvent) -> str:
        return await db.get_secret(event.account_id)

    @app.on_webhook(event_type="file.created", secret=resolve_secret)
    async def on_file_created(event: WebhookEvent):
        pass

    @app.on_webhook(event_type="file.updated")
    async def on_another_event(event: WebhookEvent):
        pass

    event = WebhookEvent.model_validate(webhook_payload("r1"))
    secrets = [
        asyncio.run(app.resolve_secret(app.lookup(t), event))  # type: ignore[arg-type]
        for t in ("file.ready", "file.created", "file.updated")
    ]
    assert secrets == ["your-secret", "db:acc-1", "env-secret"]


def test_on_action_examples(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CUSTOM_ACTION_SECRET", "env-action-secret")
    get_settings.cache_clear()
    app = App()

    @app.on_action(
        event_type="my_app.transcribe", name="Transcribe", description="Transcribe file", secret="your-secret"
    )
    async def on_transcribe(event: ActionEvent):
        pass

    async def resolve_secret(event: ActionEvent) -> str:
        return await db.get_secret(event.resource.id)  # type: ignore[union-attr]

    @app.on_action(event_type="my_app.convert", name="Convert", description="Convert file", secret=resolve_secret)
    async def on_convert(event: ActionEvent):
        pass

    @app.on_action(event_type="my_app.process", name="Process", description="Process file")
    async def on_process(event: ActionEvent):
        pass

    event = ActionEvent.model_validate(action_payload("i"))
    secrets = [
        asyncio.run(app.resolve_secret(app.lookup(t), event))  # type: ignore[arg-type]
        for t in ("my_app.transcribe", "my_app.convert", "my_app.process")
    ]
    assert secrets == ["your-secret", "db:file-1", "env-action-secret"]


def test_secret_resolver_example():
    class DatabaseSecretResolver:
        def __init__(self, db):
            self.db = db

        async def get_webhook_secret(self, event: WebhookEvent) -> str:
            return await self.db.webhooks.get_secret(event.account_id)

        async def get_action_secret(self, event: ActionEvent) -> str:
            return await self.db.actions.get_secret(event.resource.id)

    resolver = DatabaseSecretResolver(db)
    app = App(secret_resolver=resolver)

    @app.on_webhook("file.ready")
    async def on_file(event: WebhookEvent):
        pass

    @app.on_action("my_app.go", name="Go", description="Go")
    async def on_go(event: ActionEvent):
        pass

    webhook = WebhookEvent.model_validate(webhook_payload("r"))
    action = ActionEvent.model_validate(action_payload("i"))
    assert asyncio.run(app.resolve_secret(app.lookup("file.ready"), webhook)) == "wh:acc-1"  # type: ignore[arg-type]
    assert asyncio.run(app.resolve_secret(app.lookup("my_app.go"), action)) == "act:file-1"  # type: ignore[arg-type]


def test_timing_middleware_example(capsys: pytest.CaptureFixture[str]):
    class TimingMiddleware(Middleware):
        async def __call__(self, event: AnyEvent, next: NextFunc) -> AnyResponse:
            start_time = time.monotonic()
            response = await next(event)
            duration = time.monotonic() - start_time
            print(f"Processed {event.type} in {duration:.2f}s")
            return response

    app = App(middleware=[TimingMiddleware()])

    @app.on_webhook("file.ready", secret="s")
    async def on_file(event: WebhookEvent):
        pass

    asyncio.run(app.run(app.lookup("file.ready"), WebhookEvent.model_validate(webhook_payload("r"))))  # type: ignore[arg-type]
    assert "Processed file.ready in 0.00s" in capsys.readouterr().out


def test_ui_examples_build_frameio_json():
    platforms = [SelectOption(name="Twitter", value="twitter"), SelectOption(name="Instagram", value="instagram")]
    forms = [
        Form(
            title="Confirm Action",
            fields=[CheckboxField(label="Overwrite existing file?", name="overwrite", value=False)],
        ),
        Form(
            title="External Link",
            fields=[LinkField(label="External Link", name="external_link", value="https://www.example.com")],
        ),
        Form(title="Choose Platform", fields=[SelectField(label="Platform", name="platform", options=platforms)]),
        Form(title="Comment", fields=[TextareaField(label="Comment", name="comment", value="Enter your feedback...")]),
        Form(title="Comment", fields=[TextField(label="Comment", name="comment", value="Enter your feedback...")]),
    ]
    assert [f.model_dump(exclude_none=True)["fields"][0]["type"] for f in forms] == [
        "boolean",
        "link",
        "select",
        "textarea",
        "text",
    ]
    assert Message(title="Success", description="The action was successful.").model_dump() == {
        "title": "Success",
        "description": "The action was successful.",
    }


def test_client_example_against_a_mock_frameio_api():
    seen: list[str] = []

    def frameio_api(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers['authorization']}")
        return httpx.Response(200, json={"data": {"id": "file-1", "name": "clip.mov"}})

    app = App(token="dev-console-token")
    app._client = Client(
        token="dev-console-token",
        base_url="https://api.frame.io",
        httpx_client=httpx.AsyncClient(transport=httpx.MockTransport(frameio_api)),
    )

    async def on_file_ready(event: WebhookEvent) -> str:
        file_details = await app.client.files.show(account_id=event.account_id, file_id=event.resource_id)
        return file_details.data.name

    event = WebhookEvent.model_validate(webhook_payload("file-1"))
    assert asyncio.run(on_file_ready(event)) == "clip.mov"
    assert seen == ["GET /v4/accounts/acc-1/files/file-1 Bearer dev-console-token"]


def test_get_user_token_outside_an_authenticated_handler_raises():
    with pytest.raises(RuntimeError):
        get_user_token()
