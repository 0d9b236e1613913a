"""OpenTelemetry tracing: set-up from the standard OTEL_* environment, W3C trace context in Celery
message headers (where Celery's own instrumentation puts it), and the spans both sides open.

Works without opentelemetry installed. While tracing is off `ACTIVE` is False, and callers test
that one flag before touching anything else here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from shared.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

logger = logging.getLogger(__name__)

T = TypeVar("T")

ACTIVE = False
"""True once `configure_tracing` installed a tracer provider in this process."""

TRACER_NAME = "frameio_kit"
TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace-context keys, top level in a Celery message's headers (as Celery's instrumentation
puts them), so a stock instrumented Celery consumer continues the trace too."""

_tracer: Tracer | None = None
_provider: Any = None


def configure_tracing(settings: Settings, service_name: str) -> bool:
    """Install an OTLP/HTTP tracer provider when the OTEL_* environment asks for one; True when on.

    `service_name` is the default for OTEL_SERVICE_NAME. Idempotent within a process.
    """
    global ACTIVE, _tracer, _provider
    if ACTIVE or not settings.tracing_enabled:
        return ACTIVE
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'frameio-kit[otel]'): tracing is off"
        )
        return False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current  # the integration configured its own SDK: export through it
    else:
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is only the default.
        attributes = {} if settings.otel_service_name else {SERVICE_NAME: service_name}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME)
    ACTIVE = True
    logger.info("tracing on: OTLP/HTTP export to %s", settings.otel_endpoint)
    return True


def shutdown() -> None:
    """Export what is buffered and stop (a worker's last spans must not be lost at exit)."""
    if _provider is not None:
        try:
            _provider.shutdown()
        except Exception:
            logger.warning("tracing: final export failed", exc_info=True)


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current trace context into a message's headers."""
    from opentelemetry import propagate

    propagate.inject(headers)


def carrier() -> dict[str, str]:
    """The current trace context as message headers (empty when there is no recording span)."""
    headers: dict[str, str] = {}
    if ACTIVE:
        inject(headers)
    return headers


def carried(source: Any) -> dict[str, str]:
    """The trace-context headers a consumed message carried (a Celery request or a headers dict)."""
    found: dict[str, str] = {}
    for key in TRACE_HEADERS:
        value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
        if isinstance(value, str) and value:
            found[key] = value
    return found


def extract(headers: Mapping[str, str]) -> Context:
    """The remote parent context named by `headers` (an HTTP request's or a message's)."""
    from opentelemetry import propagate

    return propagate.extract(headers)


def trace_id() -> str | None:
    """The current trace id as 32 hex digits, for log lines; None outside a span."""
    if not ACTIVE:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def span(
    name: str, kind: str = "INTERNAL", parent: Context | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """A current span whose errors are recorded by exception type only: exception text can hold
    anything (a token in a URL, a form answer) and must not reach the trace backend."""
    from opentelemetry import trace

    if _tracer is None:
        raise RuntimeError("tracing is not configured")
    with _tracer.start_as_current_span(
        name,
        context=parent,
        kind=trace.SpanKind[kind],
        attributes={k: v for k, v in (attributes or {}).items() if v is not None and v != ""},
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            status = getattr(current, "status", None)
            if status is None or status.is_unset:  # an outcome set inside says more than the exception
                mark_error(current, type(exc).__name__)
            raise


def mark_error(target: Span, error_type: str) -> None:
    from opentelemetry.trace import StatusCode

    target.set_attribute("error.type", error_type)
    target.set_status(StatusCode.ERROR, error_type)


def context_now() -> Context:
    """The current context, to hand to another thread."""
    from opentelemetry import context

    return context.get_current()


def current_span() -> Span:
    from opentelemetry import trace

    return trace.get_current_span()


def annotate(**attributes: Any) -> None:
    """Set attributes on the current span (None and empty values are skipped)."""
    target = current_span()
    for key, value in attributes.items():
        if value is not None and value != "":
            target.set_attribute(key, value)


def event_attributes(event: Any) -> dict[str, Any]:
    """The ids that say which event a span is about; never its body, data or form answers."""
    return {
        "frameio.event.type": getattr(event, "type", None),
        "frameio.resource.id": getattr(event, "resource_id", None),
        "frameio.account.id": getattr(event, "account_id", None),
        "frameio.interaction.id": getattr(event, "interaction_id", None),
    }


async def in_context(parent: Context, name: str, work: Awaitable[T], attributes: Mapping[str, Any]) -> T:
    """Await `work` in a child span of `parent`: for work handed to another thread's event loop,
    which does not inherit the caller's context."""
    from opentelemetry import context

    token = context.attach(parent)
    try:
        with span(name, attributes=attributes):
            return await work
    finally:
        context.detach(token)


def wait_seconds(enqueued_at: Any) -> float | None:
    """Seconds since a message's enqueue timestamp header, if it has a usable one."""
    if isinstance(enqueued_at, int | float) and enqueued_at > 0:
        return max(0.0, time.time() - float(enqueued_at))
    return None


_CLIENT_SPAN = "frameio_kit.client_span"
"""The request extension that carries a call's span from the request hook to the response hook."""


def client_event_hooks() -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
    """httpx `event_hooks` that give each HTTP call a client span (method, host, path and status;
    never the query, headers or body), child of the caller's current span.

    Event hooks, not a wrapping `transport=`: a client given a transport drops httpx's proxy
    settings from the environment. A call that fails before a response (connect error, timeout)
    gets no span of its own; the exception reaches the caller's span. The trace context is not
    sent: the far side is Frame.io, not part of the trace.
    """
    return {"request": [_start_client_span], "response": [_end_client_span]}


async def _start_client_span(request: httpx.Request) -> None:
    if _tracer is None:
        return
    from opentelemetry.trace import SpanKind

    attributes = {
        "http.request.method": request.method,
        "server.address": request.url.host,
        "url.path": request.url.path,
    }
    request.extensions[_CLIENT_SPAN] = _tracer.start_span(
        f"{request.method} {request.url.host}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


async def _end_client_span(response: httpx.Response) -> None:
    current: Span | None = response.request.extensions.pop(_CLIENT_SPAN, None)
    if current is None:
        return
    current.set_attribute("http.response.status_code", response.status_code)
    if response.status_code >= 500:
        mark_error(current, str(response.status_code))
    current.end()
