"""When tracing turns on, what the trace-context helpers read, and v0.0.10's OpenTelemetryMiddleware."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from frameio_kit import OpenTelemetryMiddleware, WebhookEvent
from shared import tracing
from shared.settings import Settings
from tests.helpers import webhook_payload


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "console,otlp"}, True),
    ],
)
def test_tracing_is_on_only_when_an_otlp_endpoint_is_configured(monkeypatch, env, on):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().tracing_enabled is on


def test_trace_headers_are_read_from_a_celery_request_or_a_headers_dict():
    class Request:
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        tracestate = None

    assert tracing.carried(Request()) == {"traceparent": Request.traceparent}
    assert tracing.carried({"tracestate": "k=v", "other": "x"}) == {"tracestate": "k=v"}
    assert tracing.carried(object()) == {}


def test_middleware_keeps_v0_0_10_constructor_and_spans_each_event_without_exception_text():
    params = inspect.signature(OpenTelemetryMiddleware.__init__).parameters
    assert list(params)[1:] == ["tracer_name", "tracer_provider"]
    assert params["tracer_name"].default == "frameio_kit"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    middleware = OpenTelemetryMiddleware(tracer_name="mine", tracer_provider=provider)
    event = WebhookEvent.model_validate(webhook_payload("file-9"))

    async def ok(_: object) -> None:
        return None

    async def fails(_: object) -> None:
        raise RuntimeError("token abc123 rejected")

    asyncio.run(middleware(event, ok))
    with pytest.raises(RuntimeError):
        asyncio.run(middleware(event, fails))
    first, second = exporter.get_finished_spans()
    assert first.name == "frameio file.ready"
    assert first.kind is SpanKind.SERVER
    assert first.instrumentation_scope is not None and first.instrumentation_scope.name == "mine"
    assert first.attributes is not None and first.attributes["frameio.resource.id"] == "file-9"
    assert first.attributes["frameio.account.id"] == "acc-1"
    assert first.status.status_code is StatusCode.OK
    assert second.status.status_code is StatusCode.ERROR
    assert second.attributes is not None and second.attributes["error.type"] == "RuntimeError"
    assert "abc123" not in repr(second.to_json())
