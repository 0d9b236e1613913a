"""The uvicorn internals the ingress builds on, in one place: `HttpToolsProtocol`, which ingress/server.py
subclasses to add the connection limits, and the names it reads on it, on its request cycle and on the
flow control that pauses and resumes reading.

`check()` runs at start-up (the ingress lifespan): a uvicorn that renamed one of them would otherwise
drop a limit without a word (an override nobody calls), so the ingress refuses to start instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shared.errors import ConfigurationError

SUPPORTED = "uvicorn>=0.30,<0.56"
"""As pyproject.toml bounds it; tests/test_dependency_adapters.py keeps the two equal."""


def _unsupported(missing: Iterable[str]) -> ConfigurationError:
    try:
        installed = f"uvicorn {version('uvicorn')}"
    except PackageNotFoundError:
        installed = "no uvicorn"
    return ConfigurationError(
        f"{installed} is not supported: the ingress's connection limits (ingress/server.py) need "
        f"{', '.join(missing)}; install {SUPPORTED} (pyproject.toml)"
    )


try:
    from uvicorn.config import Config
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    from uvicorn.server import ServerState
except ImportError as exc:  # httptools missing, or the module moved
    raise _unsupported([f"uvicorn.protocols.http.httptools_impl ({exc})"]) from exc

__all__ = ["SUPPORTED", "Config", "FlowControl", "HttpToolsProtocol", "RequestResponseCycle", "ServerState", "check"]

# Methods ingress/server.py overrides or calls: the parser and the request cycle call them by name.
_PROTOCOL_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
)
# (pause_writing and resume_writing, which server.py overrides too, are asyncio's protocol interface.)
_PROTOCOL_INIT_PARAMETERS = ("config", "server_state", "app_state", "_loop")
# Instance attributes, named by the uvicorn method that sets them: (owner, method, attributes).
_INSTANCE_ATTRIBUTES: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (HttpToolsProtocol, "__init__", ("loop", "connections", "pipeline", "cycle")),
    (HttpToolsProtocol, "connection_made", ("transport",)),
    # The cycle writes through the protocol's transport: HeadHoldingTransport sees every response write.
    (HttpToolsProtocol, "on_headers_complete", ("cycle", "transport")),
    # The pipeline limit: uvicorn queues pipelined requests in `pipeline`, pausing reading through its
    # flow control, which pauses and resumes the transport that HeadHoldingTransport wraps.
    (HttpToolsProtocol, "on_headers_complete", ("pipeline", "flow", "pause_reading")),
    (HttpToolsProtocol, "on_response_complete", ("pipeline", "flow", "resume_reading")),
    (FlowControl, "pause_reading", ("_transport", "pause_reading")),
    (FlowControl, "resume_reading", ("_transport", "resume_reading")),
    # on_response_complete reads the answered cycle's state (issue 21: not the next request's).
    (
        RequestResponseCycle,
        "__init__",
        ("more_body", "response_started", "response_complete", "expected_content_length"),
    ),
)


def check() -> None:
    """Raise `ConfigurationError` naming the supported uvicorn versions if any internal we use is gone."""
    missing = [
        f"HttpToolsProtocol.{name}"
        for name in _PROTOCOL_METHODS
        if not callable(getattr(HttpToolsProtocol, name, None))
    ]
    init_names = _code_names(HttpToolsProtocol.__init__)
    missing += [f"HttpToolsProtocol.__init__({name})" for name in _PROTOCOL_INIT_PARAMETERS if name not in init_names]
    for owner, method, attributes in _INSTANCE_ATTRIBUTES:
        names = _code_names(getattr(owner, method, None))
        missing += [f"{owner.__name__}.{name} (set or read in {method})" for name in attributes if name not in names]
    if missing:
        raise _unsupported(missing)


def _code_names(function: Callable[..., Any] | None) -> frozenset[str]:
    """The attribute and parameter names a function's own code uses: instance attributes exist only on
    instances, and building a real protocol needs a loaded uvicorn Config, so the check reads the code
    that sets them instead."""
    code = getattr(function, "__code__", None)
    if code is None:
        return frozenset()
    return frozenset(code.co_names) | frozenset(code.co_varnames)
