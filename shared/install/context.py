"""`get_install_config()` and `get_request()`: what a running handler may ask about its event.

Both live in context variables bound around one handler run, never on the event and never in a
task message: a worker reads the install config itself from the verified event's workspace.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

_install_config: ContextVar[dict[str, str] | None] = ContextVar("frameio_kit_install_config", default=None)
_request: ContextVar[Any | None] = ContextVar("frameio_kit_request", default=None)


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
