"""`Registry`: the handler registry, secret resolution and the middleware chain.

The same object serves both sides: the ingress verifies and answers with it, the workers find
webhook handlers in it. The public `frameio_kit.App` adds the ASGI entry point on top, so this
package never imports the web side.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args

from shared.context import bind_event_account, bind_install_config, reset_event_account, reset_install_config
from shared.core.events import (
    Account,
    ActionEvent,
    AnyEvent,
    Resource,
    ResourceType,
    User,
    WebhookEvent,
    Workspace,
)
from shared.core.middleware import Middleware, NextFunc, build_chain
from shared.core.ui import AnyResponse, Message
from shared.errors import ConfigurationError, SecretResolutionError
from shared.install.models import ActionManifestEntry, HandlerManifest, InstallField, validate_install_fields
from shared.install.options import InstallOptions
from shared.logs import protect_kit_loggers
from shared.oauth.config import OAuthConfig
from shared.settings import Settings, SigningSecrets, get_settings

if TYPE_CHECKING:
    from shared.core.client import Client
    from shared.install.resolver import InstallSecretResolver
    from shared.install.store import InstallationStore
    from shared.oauth.token_manager import TokenManager

WebhookSecretResolver = Callable[[WebhookEvent], Awaitable[str]]
ActionSecretResolver = Callable[[ActionEvent], Awaitable[str]]
WebhookHandlerFunc = Callable[[WebhookEvent], Awaitable[None]]
"""A webhook handler: runs in a worker; its return value is ignored."""
ActionHandlerFunc = Callable[[ActionEvent], Awaitable[AnyResponse]]
"""A custom action handler: answers a Message, a Form or None."""
Handler = Callable[[Any], Awaitable[AnyResponse]]
H = TypeVar("H", bound=Handler)
OrderingScope = Literal["resource", "project", "workspace", "account"]
OrderedBy = OrderingScope | Callable[[Any], str]
"""What `ordered_by=` takes: a scope of the event, or a function from the event to a key."""
DeadLetterHook = Callable[[Any], Awaitable[None]]
"""An `@app.on_dead_letter` function: called in the worker with a dead letter's summary."""
OnAuthCompleteFunc = Callable[["AuthCompleteContext"], Awaitable[Any]]
"""Per-action callback after a sign-in that action asked for: may return a Starlette `Response`
(e.g. a redirect) to replace the default "signed in" page, or None to keep it."""


@dataclass(frozen=True)
class AuthCompleteContext:
    """What an `on_auth_complete` callback gets: the original `ActionEvent` that asked for sign-in."""

    event: ActionEvent


_secrets_required = True


def disable_secret_check() -> None:
    """Workers call this before importing the integration: they never verify signatures, so
    they must start without the signing secrets (the ingress still refuses to start without)."""
    global _secrets_required
    _secrets_required = False


class SecretResolver(Protocol):
    """Protocol for app-level secret resolution."""

    async def get_webhook_secret(self, event: WebhookEvent) -> str:
        """Resolve secret for webhook events."""
        ...

    async def get_action_secret(self, event: ActionEvent) -> str:
        """Resolve secret for action events."""
        ...


@dataclass(frozen=True)
class HandlerSpec:
    """One registered handler and how to find its signing secret."""

    kind: Literal["webhook", "action", "action_job"]
    event_type: str
    func: Handler
    secret: str | Callable[[Any], Awaitable[str]] | None = field(repr=False)
    name: str = ""
    description: str = ""
    require_user_auth: bool = False
    max_retries: int | None = None
    retry_backoff: float | None = None
    resource_types: tuple[str, ...] = ()
    timeout_message: Message | None = None
    on_auth_complete: OnAuthCompleteFunc | None = None
    timeout: float | None = None
    queue: str | None = None
    ordered_by: OrderedBy | None = None
    chain: NextFunc = field(compare=False, default=None)  # type: ignore[assignment]

    @property
    def model(self) -> type[WebhookEvent] | type[ActionEvent]:
        return WebhookEvent if self.kind == "webhook" else ActionEvent


class Registry:
    """Handlers, secrets, middleware and clients of one integration (`frameio_kit.App`'s base)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        middleware: list[Middleware] | None = None,
        oauth: OAuthConfig | None = None,
        secret_resolver: SecretResolver | None = None,
        install: bool = False,
        install_fields: list[InstallField] | None = None,
        install_session_ttl: int = 1800,
        base_url: str | None = None,
        allowed_accounts: list[str] | None = None,
        name: str | None = None,
        description: str = "",
        logo_url: str | None = None,
        api_url: str | None = None,
    ) -> None:
        protect_kit_loggers()  # every process that runs an App escapes request values in the kit's log lines
        self._token = token
        self.api_url = api_url  # Frame.io API base; None reads FRAMEIO_KIT_API_URL (default https://api.frame.io)
        self._middleware: list[Middleware] = list(middleware or [])
        self._oauth = oauth
        self._secret_resolver = secret_resolver
        self._webhooks: dict[str, HandlerSpec] = {}
        self._actions: dict[str, HandlerSpec] = {}
        self._action_jobs: dict[str, HandlerSpec] = {}
        self._dead_letter_hooks: list[DeadLetterHook] = []
        self._client: Client | None = None
        # One token manager (HTTP client + Redis pool) per event loop, closed by aclose().
        self._token_managers: dict[object, TokenManager] = {}
        self._install_stores: dict[object, InstallationStore] = {}
        self._install: InstallOptions | None = None
        self._install_resolver: InstallSecretResolver | None = None
        if oauth is not None:
            from shared.oauth.token_store import encryption_keys

            encryption_keys(oauth, get_settings())  # outside dev mode, no key fails here, at start-up
        if install:
            self._enable_install(
                InstallOptions(
                    fields=validate_install_fields(install_fields or []),
                    allowed_accounts=frozenset(allowed_accounts) if allowed_accounts is not None else None,
                    name=name or "Frame.io integration",
                    description=description,
                    logo_url=logo_url,
                    session_ttl=install_session_ttl,
                    base_url=base_url,
                )
            )

    def _enable_install(self, options: InstallOptions) -> None:
        """Install records become the signing-secret source of every handler declared without a secret."""
        if self._oauth is None:
            raise ConfigurationError("App(install=True) needs oauth=OAuthConfig(...): admins sign in with Adobe")
        settings = get_settings()
        if _secrets_required and settings.session_secret is None and not settings.dev:
            raise ConfigurationError(
                "App(install=True) needs FRAMEIO_KIT_SESSION_SECRET (a long random string) to sign install-page "
                "session cookies"
            )
        from shared.install.resolver import InstallSecretResolver

        self._install = options
        self._install_resolver = InstallSecretResolver(
            lambda: self.install_store, settings.install_cache_ttl, options.account_allowed
        )
        if self._secret_resolver is None:
            self._secret_resolver = self._install_resolver

    # -- registration -------------------------------------------------------------------

    def on_webhook(
        self,
        event_type: str | list[str],
        secret: str | WebhookSecretResolver | None = None,
        *,
        max_retries: int | None = None,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        queue: str | None = None,
        ordered_by: OrderedBy | None = None,
    ) -> Callable[[H], H]:
        """Decorator to register a function as a webhook event handler (one type or a list).

        `max_retries` (retries after the first attempt) and `retry_backoff` (base delay, seconds)
        override FRAMEIO_KIT_MAX_RETRIES and FRAMEIO_KIT_RETRY_BACKOFF for this handler. `timeout`
        (seconds) overrides FRAMEIO_KIT_HANDLER_TIMEOUT. `queue` names the queue its jobs go to
        (workers pick queues with `--queues`). `ordered_by` ("resource", "project", "workspace",
        "account" or a function from the event to a key) runs events with the same key one at a
        time, in the order they were acknowledged.
        """
        types = [event_type] if isinstance(event_type, str) else list(event_type)
        secret = self._secret_source(secret, "webhook")
        where = f"on_webhook({event_type!r})"
        _check_job_options(where, max_retries, retry_backoff, timeout, queue)
        if ordered_by is not None and not callable(ordered_by) and ordered_by not in get_args(OrderingScope):
            raise ConfigurationError(
                f"{where}: ordered_by must be one of {', '.join(get_args(OrderingScope))} or a function of the event"
            )

        def decorator(func: H) -> H:
            _require_coroutine(func)
            for t in types:
                self._webhooks[t] = self._spec(
                    "webhook",
                    t,
                    func,
                    secret,
                    max_retries=max_retries,
                    retry_backoff=retry_backoff,
                    timeout=timeout,
                    queue=queue,
                    ordered_by=ordered_by,
                )
            return func

        return decorator

    def on_action(
        self,
        event_type: str,
        name: str,
        description: str,
        secret: str | ActionSecretResolver | None = None,
        *,
        require_user_auth: bool = False,
        resource_type: ResourceType | Sequence[ResourceType] | None = None,
        timeout_message: Message | None = None,
        on_auth_complete: OnAuthCompleteFunc | None = None,
    ) -> Callable[[H], H]:
        """Decorator to register a function as a custom action handler.

        `resource_type` ("file", "folder", "version_stack" or a list): on any other resource the
        user gets a "not available" Message and the handler does not run. `timeout_message`
        replaces the Message answered when the handler overruns FRAMEIO_KIT_ACTION_TIMEOUT.
        `on_auth_complete` runs after a user signed in from this action's sign-in Form, with an
        `AuthCompleteContext`; a `Response` it returns replaces the "signed in" page.
        """
        secret = self._secret_source(secret, "action")
        if require_user_auth and self._oauth is None:
            raise ConfigurationError(
                f"on_action({event_type!r}) requires user auth but App has no oauth=OAuthConfig(...)"
            )
        resource_types = _resource_types(event_type, resource_type)

        def decorator(func: H) -> H:
            _require_coroutine(func)
            self._actions[event_type] = self._spec(
                "action",
                event_type,
                func,
                secret,
                name=name,
                description=description,
                require_user_auth=require_user_auth,
                resource_types=resource_types,
                timeout_message=timeout_message,
                on_auth_complete=on_auth_complete,
            )
            return func

        return decorator

    def on_action_job(
        self,
        job: str,
        *,
        max_retries: int | None = None,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        queue: str | None = None,
    ) -> Callable[[H], H]:
        """Decorator to register the worker-side follow-up of an action, run by `hand_off(event, job)`.

        The function receives the `ActionEvent` (with `form_history` and `answers`) in a worker,
        through the middleware chain, and is retried like a webhook handler (`max_retries` and
        `retry_backoff` as for `on_webhook`), then dead-lettered; its return value is ignored (the
        user already had their answer). `timeout` and `queue` as for `on_webhook`.
        """
        _check_job_options(f"on_action_job({job!r})", max_retries, retry_backoff, timeout, queue)

        def decorator(func: H) -> H:
            _require_coroutine(func)
            self._action_jobs[job] = self._spec(
                "action_job",
                job,
                func,
                None,
                max_retries=max_retries,
                retry_backoff=retry_backoff,
                timeout=timeout,
                queue=queue,
            )
            return func

        return decorator

    def on_dead_letter(self, func: DeadLetterHook) -> DeadLetterHook:
        """Decorator for code alerts: `func(summary)` runs in the worker once per dead letter, with
        its summary (ids, type, reason, attempts; never the body or a secret). Its own failure is
        logged and never loses the dead letter."""
        _require_coroutine(func)
        self._dead_letter_hooks.append(func)
        return func

    @property
    def dead_letter_hooks(self) -> tuple[DeadLetterHook, ...]:
        return tuple(self._dead_letter_hooks)

    def _spec(
        self,
        kind: Literal["webhook", "action", "action_job"],
        event_type: str,
        func: Handler,
        secret: Any,
        **extra: Any,
    ) -> HandlerSpec:
        return HandlerSpec(kind, event_type, func, secret, chain=build_chain(self._middleware, func), **extra)

    def _secret_source(
        self, secret: str | Callable[[Any], Awaitable[str]] | None, kind: Literal["webhook", "action"]
    ) -> str | Callable[[Any], Awaitable[str]] | None:
        """What a handler's secret comes from, settled at decoration time as in v0.0.10: a non-blank
        string, a resolver, None for the App's resolver, else the environment variable read now.
        A blank string counts as "not set" (`secret=os.getenv("X", "")` with X unset)."""
        if callable(secret) or (isinstance(secret, str) and secret.strip()):
            return secret
        if self._secret_resolver is not None:
            return None
        env = SigningSecrets()
        from_env = env.webhook_secret if kind == "webhook" else env.custom_action_secret
        if from_env is not None:
            return from_env.get_secret_value()
        if _secrets_required:
            what, env_name = (
                ("Webhook", "WEBHOOK_SECRET") if kind == "webhook" else ("Custom action", "CUSTOM_ACTION_SECRET")
            )
            raise ConfigurationError(
                f"{what} secret must be provided either via 'secret' parameter, "
                f"app-level secret_resolver, or {env_name} environment variable"
            )
        return None

    # -- lookup and dispatch -------------------------------------------------------------

    @property
    def webhook_handlers(self) -> dict[str, HandlerSpec]:
        return self._webhooks

    @property
    def action_handlers(self) -> dict[str, HandlerSpec]:
        return self._actions

    @property
    def action_job_handlers(self) -> dict[str, HandlerSpec]:
        """Follow-up jobs of actions (`on_action_job`), by job name."""
        return self._action_jobs

    def lookup(self, event_type: str) -> HandlerSpec | None:
        """The handler registered for `event_type`, webhooks first."""
        return self._webhooks.get(event_type) or self._actions.get(event_type)

    def static_secret(self, spec: HandlerSpec) -> str | None:
        """The secret known without looking at the event, or None when a resolver decides."""
        return spec.secret if isinstance(spec.secret, str) else None

    async def resolve_secret(self, spec: HandlerSpec, event: AnyEvent) -> str:
        """Secret precedence: explicit string, decorator resolver, app resolver, environment (the
        last two settled at decoration). A resolver that raises or answers something other than a
        string is a server fault: `SecretResolutionError` (503), whose message names the handler and
        the exception's type and place, never its text (a resolver's error may carry credentials).
        A blank answer or None raises it here too (there is no secret to return); the ingress asks
        `resolve_secrets`, where it means an account the resolver does not know (401)."""
        secret = await self._resolver_answer(spec, event)
        if secret is None:
            raise SecretResolutionError(
                spec.event_type, f"secret resolver of {_describe(spec.func)} answered an empty secret"
            )
        return secret

    async def _resolver_answer(self, spec: HandlerSpec, event: AnyEvent) -> str | None:
        """The secret, or None when the resolver answered blank or None ("no secret for this event")."""
        if isinstance(spec.secret, str):
            return spec.secret
        resolver: Callable[[Any], Awaitable[str]] | None = spec.secret
        if resolver is None and self._secret_resolver is not None:
            app_resolver = self._secret_resolver
            resolver = app_resolver.get_webhook_secret if spec.kind == "webhook" else app_resolver.get_action_secret
        handler = _describe(spec.func)
        if resolver is None:
            raise SecretResolutionError(spec.event_type, f"no signing secret configured for {handler}")
        try:
            secret: object = await resolver(event)  # typed `str`, but integrations answer None too
        except Exception as exc:
            raise SecretResolutionError(
                spec.event_type, f"secret resolver of {handler} raised {type(exc).__name__}{_where(exc)}"
            ) from None
        if secret is None or (isinstance(secret, str) and not secret.strip()):
            return None  # blank is never a key: the usual answer for an account the resolver does not know
        if not isinstance(secret, str):
            raise SecretResolutionError(
                spec.event_type, f"secret resolver of {handler} answered a {type(secret).__name__}, not a string"
            )
        return secret

    async def resolve_secrets(self, spec: HandlerSpec, event: AnyEvent) -> tuple[str, ...]:
        """Every secret that may have signed `event`: one, or under `install=True` the install record's
        current secret and replaced ones still in their grace period; () when its workspace has no
        install or the resolver answered blank or None (the request is then refused with 401)."""
        installed = self._install_resolver
        if installed is not None and self._from_install_records(spec):
            return await installed.secrets_for(event)
        secret = await self._resolver_answer(spec, event)
        return () if secret is None else (secret,)

    def secret_probe(self, spec: HandlerSpec, payload: Mapping[str, Any]) -> AnyEvent | None:
        """`spec`'s event reduced to the ids that pick its secrets (type, account, workspace, action
        id), read from the parsed body without validating it, when install records are the source:
        their resolver reads nothing else, so the ingress checks the signature before validating the
        body. None when a resolver of the integration's own decides: it is promised the whole event.

        The ids are those validation would give (strings, else ""); the ingress still compares them
        with the validated event's and refuses a difference."""
        if not self._from_install_records(spec):
            return None
        workspace = Workspace.model_construct(id=_id_in(payload.get("workspace")))
        if spec.kind == "webhook":
            account = Account.model_construct(id=_id_in(payload.get("account")))
            # Only the ids that pick the secret; the rest is left blank, never read from the unsigned body.
            return WebhookEvent.model_construct(
                type=spec.event_type,
                account=account,
                workspace=workspace,
                resource=Resource.model_construct(id="", type=""),
                user=User.model_construct(id=""),
            )
        return ActionEvent.model_construct(
            type=spec.event_type,
            interaction_id="",
            account_id=_text(payload.get("account_id")),
            action_id=_text(payload.get("action_id")),
            workspace=workspace,
        )

    def _from_install_records(self, spec: HandlerSpec) -> bool:
        installed = self._install_resolver
        return spec.secret is None and installed is not None and self._secret_resolver is installed

    async def run(self, spec: HandlerSpec, event: AnyEvent) -> AnyResponse:
        """Run the handler through the middleware chain, with the event's install config bound
        (`get_install_config()`) under `install=True`."""
        if self._install_resolver is None:
            return await self._run(spec, event)
        record = await self._install_resolver.record_for(event)
        handle = bind_install_config(dict(record.config or {}) if record is not None else None)
        try:
            return await self._run(spec, event)
        finally:
            reset_install_config(handle)

    async def _run(self, spec: HandlerSpec, event: AnyEvent) -> AnyResponse:
        if self._oauth is None:
            return await spec.chain(event)
        # The event's account is the tenant `token_manager.get_token(user_id)` answers for in the handler.
        handle = bind_event_account(event.account_id or None)
        try:
            # Webhooks and action jobs (workers) see the event user's stored token, if they signed in.
            if spec.kind != "action" or spec.require_user_auth:
                from shared.oauth.token_manager import run_as_event_user

                return await run_as_event_user(self.token_manager, spec.chain, event)
            return await spec.chain(event)
        finally:
            reset_event_account(handle)

    # -- install ---------------------------------------------------------------------------

    @property
    def install_options(self) -> InstallOptions | None:
        """What `App(install=True, ...)` configured; None without install."""
        return self._install

    @property
    def install_resolver(self) -> InstallSecretResolver | None:
        return self._install_resolver

    @property
    def install_store(self) -> InstallationStore:
        """This event loop's install record store (shared Redis, the token store's keys)."""
        if self._install is None or self._oauth is None:
            raise RuntimeError("App.install_store needs App(install=True, oauth=...)")
        loop = _running_loop()
        store = self._install_stores.get(loop)
        if store is None:
            from shared.install.store import InstallationStore
            from shared.oauth.token_store import TokenCipher, encryption_keys
            from shared.redis_client import async_client

            settings = get_settings()
            store = self._install_stores[loop] = InstallationStore(
                async_client(settings.redis_url, "tokens"), TokenCipher(encryption_keys(self._oauth, settings))
            )
        return store

    def build_manifest(self) -> HandlerManifest:
        """What an install creates: one webhook for every registered event type, one action per handler."""
        return HandlerManifest(
            webhook_events=sorted(self._webhooks),
            actions=[
                ActionManifestEntry(event_type=t, name=s.name, description=s.description)
                for t, s in sorted(self._actions.items())
            ],
        )

    def validate_configuration(self) -> list[str]:
        """Check configuration is valid before accepting requests: the list of problems, [] when none.

        Looks at the handlers and at this process's environment: handlers without a signing secret,
        user auth or install without OAuth, OAuth without encryption keys, install without a session
        secret, an unknown `resource_type`, `on_auth_complete` on an action without `require_user_auth`.
        """
        problems: list[str] = []
        settings = get_settings()
        for spec in [*self._webhooks.values(), *self._actions.values()]:
            if spec.secret is None and self._secret_resolver is None:
                env = "WEBHOOK_SECRET" if spec.kind == "webhook" else "CUSTOM_ACTION_SECRET"
                problems.append(f"{spec.kind.capitalize()} '{spec.event_type}' has no signing secret (set {env})")
        for spec in self._actions.values():
            if spec.require_user_auth and self._oauth is None:
                problems.append(f"Action '{spec.event_type}' requires user auth but OAuth not configured")
            invalid = _invalid_resource_types(spec.resource_types)
            if invalid:
                problems.append(f"Action '{spec.event_type}' has invalid resource type(s): {', '.join(invalid)}")
            if spec.on_auth_complete is not None and not spec.require_user_auth:
                problems.append(f"Action '{spec.event_type}' has on_auth_complete but require_user_auth is False")
        if self._oauth is not None and not self._oauth.encryption_key and settings.encryption_keys is None:
            if not settings.dev:
                problems.append("OAuth is configured but FRAMEIO_KIT_ENCRYPTION_KEYS is not set")
        if self._install is not None:
            if settings.session_secret is None and not settings.dev:
                problems.append("install=True but FRAMEIO_KIT_SESSION_SECRET is not set")
            if not self._webhooks and not self._actions:
                problems.append("install=True but no webhook or action handler is registered")
        if settings.job_signing_keys is None and not settings.dev:
            problems.append("FRAMEIO_KIT_JOB_SIGNING_KEYS is not set")
        return problems

    def check_start_up(self, settings: Settings) -> None:
        """Raise `ConfigurationError` for what an ingress or worker process cannot serve; called when
        one loads the integration (`load_app`), not by the in-process testing harness. `App` adds the
        storage check (frameio_kit/storage.py)."""

    # -- clients and OAuth ----------------------------------------------------------------

    @property
    def oauth(self) -> OAuthConfig | None:
        return self._oauth

    @property
    def client(self) -> Client:
        """An authenticated API client built from `App(token=...)`, created on first use."""
        if self._token is None:
            raise RuntimeError("App.client needs App(token=...)")
        if self._client is None:
            from shared.core.client import Client

            self._client = Client(token=self._token, base_url=self.api_url)
        return self._client

    @property
    def token_manager(self) -> TokenManager:
        """The OAuth token manager (`get_token`, `store_token`, `delete_token`); only with `App(oauth=...)`."""
        if self._oauth is None:
            raise RuntimeError("App.token_manager needs App(oauth=OAuthConfig(...))")
        loop = _running_loop()
        manager = self._token_managers.get(loop)
        if manager is None:
            from shared.oauth.token_manager import build_token_manager

            manager = self._token_managers[loop] = build_token_manager(self._oauth, get_settings())
        return manager

    async def aclose(self) -> None:
        """Close the API client and this event loop's token manager (HTTP and Redis connections)."""
        client, self._client = self._client, None
        manager = self._token_managers.pop(_running_loop(), None)
        store = self._install_stores.pop(_running_loop(), None)
        if client is not None:
            await client.close()
        if manager is not None:
            await manager.close()
        if self._install_resolver is not None:
            await self._install_resolver.close()
        if store is not None:
            await store.close()
        from shared.ratelimit.limiter import aclose_limiter

        await aclose_limiter()  # the loop's shared rate-limiter connections (docs/limits.md)


def _running_loop() -> object:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resource_types(event_type: str, resource_type: str | Sequence[str] | None) -> tuple[str, ...]:
    if resource_type is None:
        return ()
    types = (resource_type,) if isinstance(resource_type, str) else tuple(resource_type)
    if not types:
        raise ConfigurationError(f"on_action({event_type!r}): resource_type must not be an empty sequence")
    # An unknown type is reported by validate_configuration(), as in v0.0.10, not raised here: it
    # can only narrow the filter (no resource has that type), so no request gets past it.
    return types


def _invalid_resource_types(types: tuple[str, ...]) -> list[str]:
    return sorted(set(types) - set(get_args(ResourceType)))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id_in(value: Any) -> str:
    """`value["id"]` of a JSON object, "" when it is not an object with a string id."""
    return _text(value.get("id")) if isinstance(value, dict) else ""


def _describe(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHARD_NAME = re.compile(r"\.f\d\d\Z")  # `<queue>.f03` names a queue's account shard (shared/jobs/routing.py)


def _check_job_options(
    where: str, max_retries: int | None, retry_backoff: float | None, timeout: float | None, queue: str | None
) -> None:
    """Refuse at decoration what would only fail in a worker later."""
    if max_retries is not None and max_retries < 0:
        raise ConfigurationError(f"{where}: max_retries must be >= 0")
    if retry_backoff is not None and retry_backoff < 0:
        raise ConfigurationError(f"{where}: retry_backoff must be >= 0")
    if timeout is not None and not timeout > 0:
        raise ConfigurationError(f"{where}: timeout must be > 0 seconds")
    if queue is not None and not _QUEUE_NAME.fullmatch(queue):
        raise ConfigurationError(
            f"{where}: queue={queue!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    if queue is not None and _SHARD_NAME.search(queue):
        raise ConfigurationError(
            f"{where}: queue={queue!r} ends like an account shard's name (.f00-.f99, docs/tenants.md)"
        )


def _require_coroutine(func: Callable[..., Any]) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{getattr(func, '__name__', func)!r} must be an async function (async def)")
