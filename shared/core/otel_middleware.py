"""`OpenTelemetryMiddleware`: v0.0.10's span around each handler run, for integrations that pass it in
`middleware=[...]`. The runtime's own spans (shared/tracing.py) do not need it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.core.events import ActionEvent, AnyEvent
from shared.core.middleware import Middleware, NextFunc
from shared.core.ui import AnyResponse

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider


class OpenTelemetryMiddleware(Middleware):
    """Middleware that creates OpenTelemetry spans for incoming Frame.io events.

    Each webhook or custom action event is wrapped in a span with attributes describing the event
    context. If the handler raises, the span's status is set to error with the exception's type
    (not its text, which could hold a token or a form answer) before re-raising.

    When no OpenTelemetry SDK is configured this is a near-zero-cost no-op: the
    ``opentelemetry-api`` package's tracer does nothing.

    Args:
        tracer_name: The name passed to ``trace.get_tracer()``. Defaults to ``"frameio_kit"``.
        tracer_provider: An optional ``TracerProvider`` instance. When ``None`` (the default), the
            globally configured provider is used.

    Example:
        ```python
        from frameio_kit import App, OpenTelemetryMiddleware

        app = App(middleware=[OpenTelemetryMiddleware(tracer_name="my_app")])
        ```
    """

    def __init__(self, tracer_name: str = "frameio_kit", tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace import StatusCode
        except ImportError:
            raise ImportError(
                "opentelemetry-api is required for OpenTelemetryMiddleware. "
                "Install it with: pip install frameio-kit[otel]"
            ) from None
        self._tracer: Tracer = trace.get_tracer(tracer_name, tracer_provider=tracer_provider)
        self._span_kind = trace.SpanKind.SERVER
        self._status_ok = StatusCode.OK
        self._status_error = StatusCode.ERROR

    async def __call__(self, event: AnyEvent, next: NextFunc) -> AnyResponse:
        """Wrap event processing in an OpenTelemetry span."""
        attributes: dict[str, Any] = {
            "frameio.event.type": event.type,
            "frameio.account.id": event.account_id,
            "frameio.resource.id": event.resource_id,
            "frameio.resource.type": event.resource.type if event.resource is not None else "",
            "frameio.user.id": event.user_id,
            "frameio.project.id": event.project_id,
            "frameio.workspace.id": event.workspace_id,
        }
        if isinstance(event, ActionEvent):
            attributes["frameio.action.id"] = event.action_id
            attributes["frameio.interaction.id"] = event.interaction_id
        with self._tracer.start_as_current_span(
            f"frameio {event.type}",
            kind=self._span_kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await next(event)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(self._status_error, type(exc).__name__)
                raise
            span.set_status(self._status_ok)
            return response
