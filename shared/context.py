"""Every context variable bound around one handler run, with its getter and bind/reset helpers.

The user's token, the event's account, the action's hand-off, the install config and the
request live here, never on the event and never in a task message: the framework binds them
before a handler runs and resets them after, in the ingress or in a worker. One module for all
of them keeps this the base layer that `shared.oauth`, `shared.install`, `shared.actions` and
the registry all read, without one of them importing another for its variable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

HandOff = Callable[[str], Awaitable[None]]
"""What the ingress binds around an action handler: queue the job of that name for this step."""

_user_token: ContextVar[str | None] = ContextVar("frameio_kit_user_token", default=None)
_event_account: ContextVar[str | None] = ContextVar("frameio_kit_event_account", default=None)
_hand_off: ContextVar[HandOff | None] = ContextVar("frameio_kit_hand_off", default=None)
_install_config: ContextVar[dict[str, str] | None] = ContextVar("frameio_kit_install_config", default=None)
_request: ContextVar[Any | None] = ContextVar("frameio_kit_request", default=None)
_handler: ContextVar[str] = ContextVar("frameio_kit_handler", default="-")


# -- the signed-in user's token ------------------------------------------------------------------


def get_user_token() -> str:
    """Get the authenticated user's access token.

    Inside an action handler registered with `require_user_auth=True` (ingress), and inside a
    webhook handler or action job (worker) for the event's user when that user has signed in.
    The token lives in a context variable, never on the event.

    Raises:
        RuntimeError: outside such a handler, or in a worker when the event's user has not signed in.
    """
    token = _user_token.get()
    if token is None:
        raise RuntimeError(
            "get_user_token(): no signed-in user here (outside a require_user_auth action, or the event's "
            "user has not signed in with Adobe)"
        )
    return token


def current_user_token() -> str | None:
    """The bound token, or None (for the framework: it binds a stored token only when none is bound)."""
    return _user_token.get()


def set_user_token(token: str | None) -> Token[str | None]:
    """Bind `token` for the current task; returns the handle `reset_user_token` takes."""
    return _user_token.set(token)


def reset_user_token(handle: Token[str | None]) -> None:
    _user_token.reset(handle)


# -- the event's account (the tenant of token look-ups) -----------------------------------------


def current_event_account() -> str | None:
    """The account of the event whose handler is running, or None outside a handler."""
    return _event_account.get()


def bind_event_account(account_id: str | None) -> Token[str | None]:
    """Bind the verified event's account while its handler runs; returns the handle to reset."""
    return _event_account.set(account_id)


def reset_event_account(handle: Token[str | None]) -> None:
    _event_account.reset(handle)


# -- the action's hand-off to the workers ---------------------------------------------------------


def current_hand_off() -> HandOff | None:
    """The queueing function bound around the running action handler, or None (`hand_off` raises then)."""
    return _hand_off.get()


def bind_hand_off(func: HandOff) -> Token[HandOff | None]:
    """Bind the ingress's queueing function for the handler about to run (tasks copy it)."""
    return _hand_off.set(func)


def reset_hand_off(token: Token[HandOff | None]) -> None:
    _hand_off.reset(token)


# -- the event's install config --------------------------------------------------------------------


def get_install_config() -> dict[str, str]:
    """Get the installation configuration for the current event.

    The values the workspace admin entered for the App's `install_fields`, for the workspace the
    running event came from. Works in action handlers (ingress) and in webhook handlers and action
    jobs (workers).

    Raises:
        RuntimeError: outside a handler, or the event's workspace has no install (as v0.0.10).
    """
    config = _install_config.get()
    if config is None:
        raise RuntimeError(
            "get_install_config(): no install config here "
            "(outside a handler, or the event's workspace is not installed)"
        )
    return dict(config)


def bind_install_config(config: dict[str, str] | None) -> Token[dict[str, str] | None]:
    return _install_config.set(config)


def reset_install_config(handle: Token[dict[str, str] | None]) -> None:
    _install_config.reset(handle)


# -- the action's HTTP request -----------------------------------------------------------------------


def get_request() -> Any:
    """Get the Starlette `Request` of the current action handler run (headers, client address...).

    Raises:
        RuntimeError: outside an action handler; webhook handlers run in workers, long after the request.
    """
    request = _request.get()
    if request is None:
        raise RuntimeError("get_request() can only be called within an action handler (webhooks run in workers)")
    return request


def current_request() -> Any | None:
    """The Starlette `Request` being answered, or None (for the framework; handlers use `get_request()`)."""
    return _request.get()


def bind_request(request: Any) -> Token[Any | None]:
    return _request.set(request)


def reset_request(handle: Token[Any | None]) -> None:
    _request.reset(handle)


# -- the running handler's name (metrics of what runs inside it) ------------------------------------


def current_handler() -> str:
    """The event type (or action job) whose handler is running, "-" outside one: the label the rate
    limiter's metrics count a throttled call under."""
    return _handler.get()


def bind_handler(name: str) -> Token[str]:
    return _handler.set(name)


def reset_handler(handle: Token[str]) -> None:
    _handler.reset(handle)
