"""frameio-kit: build Frame.io integrations; run them on a verifying ingress and Celery workers."""

from shared.client import Client
from shared.errors import PermanentError
from shared.events import Account, ActionEvent, AnyEvent, Project, Resource, User, WebhookEvent, Workspace
from shared.handoff import hand_off
from shared.middleware import Middleware, NextFunc
from shared.oauth import OAuthConfig, get_user_token
from shared.registry import App, SecretResolver
from shared.signature import verify_signature
from shared.ui import (
    AnyResponse,
    CheckboxField,
    Form,
    LinkField,
    Message,
    SelectField,
    SelectOption,
    TextareaField,
    TextField,
)

__all__ = [
    "Account",
    "ActionEvent",
    "AnyEvent",
    "AnyResponse",
    "App",
    "CheckboxField",
    "Client",
    "Form",
    "LinkField",
    "Message",
    "Middleware",
    "NextFunc",
    "OAuthConfig",
    "PermanentError",
    "Project",
    "Resource",
    "SecretResolver",
    "SelectField",
    "SelectOption",
    "TextField",
    "TextareaField",
    "User",
    "WebhookEvent",
    "Workspace",
    "get_user_token",
    "hand_off",
    "verify_signature",
]
