"""Form and Message replies to custom actions, serialised as Frame.io expects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class _BaseField(BaseModel):
    label: str
    name: str


class SelectOption(BaseModel):
    """Represents a single choice within a SelectField: `name` is shown, `value` is sent back."""

    name: str
    value: str


class TextField(_BaseField):
    """A single-line text input field."""

    type: Literal["text"] = "text"
    value: str | None = None


class TextareaField(_BaseField):
    """A multi-line text input area, suitable for longer descriptions."""

    type: Literal["textarea"] = "textarea"
    value: str | None = None


class SelectField(_BaseField):
    """A dropdown menu allowing the user to select one from a list of options."""

    type: Literal["select"] = "select"
    options: list[SelectOption]
    value: str | None = None


class CheckboxField(_BaseField):
    """A checkbox input.

    Frame.io's documentation names this field type `boolean`; older frameio-kit sent
    `checkbox`. `boolean` is the default; pass `type="checkbox"` to send the old name.
    """

    type: Literal["boolean", "checkbox"] = "boolean"
    value: bool | None = None


class LinkField(_BaseField):
    """A non-editable field that displays a URL with a "Copy" button."""

    type: Literal["link"] = "link"
    value: str | None = None


FormField = TextField | TextareaField | SelectField | CheckboxField | LinkField


class _UIResponse(BaseModel):
    title: str
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The body Frame.io expects: the model without unset (None) values."""
        return self.model_dump(exclude_none=True)


class Message(_UIResponse):
    """A simple message modal to display information to the user."""


class Form(_UIResponse):
    """A modal with a form to collect input from the user."""

    fields: list[FormField]


AnyResponse = Message | Form | None
"""Union type representing any response that can be returned from handlers."""
