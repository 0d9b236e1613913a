"""`public_url`: the address the outside world reaches this app's routes at, for links, redirects and cookies."""

from __future__ import annotations

from starlette.requests import Request


def public_url(configured: str, request: Request | None) -> str:
    """`configured` (a base URL from `OAuthConfig` or `App(base_url=...)`) plus the ASGI mount prefix,
    no trailing slash.

    The prefix (Starlette's `root_path`) is added when the app is mounted under one and the configured
    URL does not already end with it, so both `base_url="https://x"` and `base_url="https://x/kit"`
    work for an app mounted at `/kit`. Headers such as X-Forwarded-Host are never read: a client
    could otherwise choose where sign-in links and OAuth redirects point.
    """
    base = configured.rstrip("/")
    prefix = str(request.scope.get("root_path", "")).rstrip("/") if request is not None else ""
    return base + prefix if prefix and not base.endswith(prefix) else base


def is_https(configured: str) -> bool:
    """Whether the configured public URL is https: cookies then carry `Secure` whatever the request
    looked like on its way in (TLS often ends at a proxy, and a forwarded-proto header is not proof)."""
    return configured.strip().lower().startswith("https://")
