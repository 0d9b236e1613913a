"""`App`: the registry of an integration's handlers, and the ASGI app that serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from frameio_kit.storage import refuse_process_local, token_storage
from shared.app.registry import Registry
from shared.settings import get_settings

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import Receive, Scope, Send

    from shared.oauth.config import OAuthConfig
    from shared.settings import Settings


class App(Registry):
    """The main application class for building Frame.io integrations.

    Register handlers with `on_webhook`, `on_action` and `on_action_job`. The object is also an
    ASGI app (`uvicorn myapp:app`): the ingress is built on its first call, so worker processes,
    which import the integration too, never load the web stack.

    The keywords frameio-kit 0.0.10 added are accepted so its code runs unchanged: `api_url` is the
    Frame.io API base of `app.client` and of sign-in (None reads FRAMEIO_KIT_API_URL); `storage` and
    `encryption_key` fill the same-named `OAuthConfig` fields when those are unset (the token store
    and its keys belong to OAuth here; what `MemoryStorage`, `DynamoDBStorage` and a v0.0.10 `Storage`
    mean is in frameio_kit/storage.py); the branding ones are kept for the install pages.
    """

    _asgi: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    def __init__(
        self,
        *,
        oauth: OAuthConfig | None = None,
        api_url: str | None = None,
        storage: Any | None = None,
        encryption_key: str | None = None,
        primary_color: str | None = None,
        accent_color: str | None = None,
        custom_css: str | None = None,
        show_powered_by: bool = True,
        **kwargs: Any,
    ) -> None:
        if oauth is not None:
            oauth = _with_app_storage(oauth, token_storage(storage), encryption_key)
        self.storage = storage
        self.encryption_key = encryption_key
        self.primary_color = primary_color
        self.accent_color = accent_color
        self.custom_css = custom_css
        self.show_powered_by = show_powered_by
        from ingress.install.branding import check_branding  # no web imports: workers load it too

        check_branding(
            primary_color=primary_color,
            accent_color=accent_color,
            custom_css=custom_css,
            logo_url=kwargs.get("logo_url"),
        )
        self._routers: list[Starlette] = []
        super().__init__(oauth=oauth, api_url=api_url, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI call interface to delegate to the underlying Starlette app."""
        if self._asgi is None:
            self._asgi = self.create_router()
        await self._asgi(scope, receive, send)

    def create_router(self) -> Starlette:
        """A Starlette app with this integration's routes (POST /, /auth/..., /install...), to `Mount`
        into an existing Starlette app. A mounted app's lifespan does not run, so call `await
        app.close()` from the host app's shutdown to release what it opened."""
        from ingress.app import create_app

        settings = get_settings()
        self.check_start_up(settings)
        router = create_app(self, settings)
        self._routers.append(router)
        return router

    def check_start_up(self, settings: Settings) -> None:
        """Refuse `MemoryStorage` outside dev mode where an ingress or worker starts (not in the harness)."""
        refuse_process_local(self.storage, settings)
        super().check_start_up(settings)

    async def close(self) -> None:
        """Close the API client, token manager and the ingress connections of every router this App
        built; safe to call more than once."""
        routers, self._routers = self._routers, []
        await self.aclose()
        for router in routers:
            await router.state.kit.close()


def _with_app_storage(oauth: OAuthConfig, storage: Any | None, encryption_key: str | None) -> OAuthConfig:
    """0.0.10 put the token store and key on `App`; here they live on `OAuthConfig`, which wins when set."""
    update: dict[str, Any] = {}
    if storage is not None and oauth.storage is None:
        update["storage"] = storage
    if encryption_key is not None and oauth.encryption_key is None:
        update["encryption_key"] = encryption_key
    return oauth.model_copy(update=update) if update else oauth
