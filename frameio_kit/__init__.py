"""frameio-kit: build Frame.io integrations; run them on a verifying ingress and Celery workers."""

from frameio_kit.app import App
from shared.actions.handoff import hand_off
from shared.core.client import Client
from shared.core.events import Account, ActionEvent, AnyEvent, Project, Resource, User, WebhookEvent, Workspace
from shared.core.middleware import Middleware, NextFunc
from shared.core.registry import SecretResolver
from shared.core.signature import verify_signature
from shared.core.ui import (
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
from shared.errors import PermanentError
from shared.oauth.config import OAuthConfig, get_user_token

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
