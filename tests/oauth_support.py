"""Shared pieces of the sign-in end-to-end tests: the OAuth test app and its keys, and a user who
runs an action, follows the sign-in link through the stand-in IMS and comes back to the ingress."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet

from tests.helpers import ACTION_SECRET, action_payload, post_signed

OAUTH_APP = "tests.apps.oauth:app"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
PUBLIC_URL = "https://kit.example.test"  # tests/apps/oauth.py's base_url (importing it needs a key)


def fingerprint(token: str) -> str:
    """What tests/apps/oauth.py records instead of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def oauth_env(ims: Any, keys: str = KEY_A) -> dict[str, str]:
    return {"FRAMEIO_KIT_IMS_URL": ims.url, "FRAMEIO_KIT_API_URL": ims.url, "FRAMEIO_KIT_ENCRYPTION_KEYS": keys}


def run_action(
    url: str, interaction: str, user: str = "user-1", event_type: str = "my_app.transcribe"
) -> dict[str, Any]:
    response = post_signed(url, action_payload(interaction, event_type=event_type, user={"id": user}), ACTION_SECRET)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def login_link(form: dict[str, Any]) -> str:
    assert form["title"] == "Sign in with Adobe", form
    (field,) = form["fields"]
    assert field["type"] == "link"
    return str(field["value"])


def on_ingress(public_url: str, ingress: str) -> str:
    """The public URL (behind a proxy in production) pointed at the test's ingress."""
    assert public_url.startswith(PUBLIC_URL), public_url
    parts = urlsplit(public_url)
    return f"{ingress}{parts.path}?{parts.query}"


def sign_in(ingress: str, form: dict[str, Any]) -> tuple[httpx.Response, str]:
    """Follow the sign-in link through the stand-in IMS; returns the callback response and its URL."""
    login = httpx.get(on_ingress(login_link(form), ingress), follow_redirects=False)
    assert login.status_code == 302, login.text
    authorize = httpx.get(login.headers["location"], follow_redirects=False)
    assert authorize.status_code == 302, authorize.text
    callback_url = on_ingress(authorize.headers["location"], ingress)
    return httpx.get(callback_url, follow_redirects=False), callback_url
