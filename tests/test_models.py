"""Event and UI models: liberal parsing, Frame.io's JSON on the way out."""

from __future__ import annotations

from frameio_kit import (
    ActionEvent,
    CheckboxField,
    Form,
    LinkField,
    Message,
    SelectField,
    SelectOption,
    TextareaField,
    TextField,
    WebhookEvent,
)
from tests.helpers import action_payload, webhook_payload


def test_webhook_event_exposes_convenience_ids():
    event = WebhookEvent.model_validate(webhook_payload("file-9"))
    assert (event.resource_id, event.user_id, event.project_id, event.workspace_id, event.account_id) == (
        "file-9",
        "user-1",
        "proj-1",
        "ws-1",
        "acc-1",
    )


def test_resource_type_is_an_open_string_and_ids_are_not_uuids():
    payload = webhook_payload("adobe:urn:aaid:sc:123", event_type="comment.created")
    payload["resource"]["type"] = "comment"
    event = WebhookEvent.model_validate(payload)
    assert event.resource.type == "comment"
    assert event.resource_id == "adobe:urn:aaid:sc:123"


def test_unknown_fields_are_kept():
    event = WebhookEvent.model_validate(webhook_payload("f", future_field={"x": 1}))
    assert event.model_extra == {"future_field": {"x": 1}}


def test_project_may_be_absent_on_workspace_level_events():
    payload = webhook_payload("share-1", event_type="share.created")
    del payload["project"]
    assert WebhookEvent.model_validate(payload).project_id == ""


def test_action_submission_without_context_fields_parses():
    event = ActionEvent.model_validate({"type": "a.b", "interaction_id": "i", "action_id": "x", "data": {"k": "v"}})
    assert event.data == {"k": "v"}
    assert event.resource_id == ""
    assert event.account.id == ""


def test_action_event_account_property_mirrors_webhooks():
    event = ActionEvent.model_validate(action_payload("i-1"))
    assert event.account.id == event.account_id == "acc-1"
    assert event.data is None


def test_form_serialises_to_frameio_json_without_nulls():
    form = Form(
        title="Choose",
        fields=[
            TextField(label="Name", name="name"),
            TextareaField(label="Notes", name="notes", value="..."),
            SelectField(label="Platform", name="platform", options=[SelectOption(name="Twitter", value="twitter")]),
            CheckboxField(label="Overwrite?", name="overwrite", value=False),
            LinkField(label="Link", name="link", value="https://example.com"),
        ],
    )
    assert form.model_dump(exclude_none=True) == {
        "title": "Choose",
        "fields": [
            {"label": "Name", "name": "name", "type": "text"},
            {"label": "Notes", "name": "notes", "type": "textarea", "value": "..."},
            {
                "label": "Platform",
                "name": "platform",
                "type": "select",
                "options": [{"name": "Twitter", "value": "twitter"}],
            },
            {"label": "Overwrite?", "name": "overwrite", "type": "boolean", "value": False},
            {"label": "Link", "name": "link", "type": "link", "value": "https://example.com"},
        ],
    }


def test_checkbox_can_use_the_older_type_name():
    assert CheckboxField(label="x", name="x", type="checkbox").model_dump()["type"] == "checkbox"


def test_message_serialises_title_and_description():
    assert Message(title="Done", description="ok").model_dump(exclude_none=True) == {
        "title": "Done",
        "description": "ok",
    }
