"""OpenTelemetry traces across the queue: a local OTLP/HTTP receiver decodes what the real ingress and
worker processes export, and the tests follow one event from its request to every worker attempt."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from frameio_kit import testing
from tests.helpers import (
    ACTION_SECRET,
    JOB_SIGNING_KEY,
    WEBHOOK_SECRET,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e

APP = "tests.apps.traced:app"
API_TOKEN = "tok-traced-7e1b94c0"  # tests/apps/traced.py's (importing it would need the signing secrets)
BODY_MARKER = "body-marker-4d1f0a"
FORM_ANSWER = "answer-key-93ab77e2"
SERVER, CONSUMER = 2, 5  # opentelemetry.proto.trace.v1.Span.SpanKind


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    service: str
    attributes: dict[str, Any]
    texts: list[str] = field(default_factory=list)  # every attribute value exported with the span


class Receiver:
    """OTLP/HTTP (protobuf) on POST /v1/traces, and a Frame.io stand-in's GET /v4/me, in a thread."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.api_calls = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(data)
                receiver.add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:
                with receiver._lock:
                    receiver.api_calls += 1
                body = json.dumps({"data": {"id": "user-1", "email": "u@example.test", "name": "U"}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attributes = {kv.key: _value(kv.value) for kv in s.attributes}
                    texts = [str(v) for v in attributes.values()] + [str(v) for v in resource.values()]
                    texts += [str(_value(kv.value)) for e in s.events for kv in e.attributes]
                    texts += [e.name for e in s.events] + [s.name, s.status.message]
                    found.append(
                        Span(
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.name,
                            s.kind,
                            str(resource.get("service.name")),
                            attributes,
                            texts,
                        )
                    )
        with self._lock:
            self.spans.extend(found)

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def find(self, **match: Any) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if all(getattr(s, k) == v for k, v in match.items())]


def ancestors(span: Span, trace: list[Span]) -> list[str]:
    """Names of `span`'s ancestors within `trace`, nearest first."""
    by_id = {s.span_id: s for s in trace}
    names = []
    current = by_id.get(span.parent_id)
    while current is not None:
        names.append(current.name)
        current = by_id.get(current.parent_id)
    return names


def assert_nothing_private(spans: list[Span], *private: str) -> None:
    """Scan every exported attribute value, event, name and status message."""
    for s in spans:
        for text in s.texts:
            for value in private:
                assert value not in text, f"{value!r} exported in span {s.name!r}: {text!r}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def traced_env(receiver: Receiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "always_on",
        "FRAMEIO_KIT_API_URL": receiver.url,
    }


def test_failed_then_retried_webhook_is_one_trace_from_request_to_each_attempt(
    start_ingress, start_worker, redis_client, redis_server, receiver, traced_env
):
    url = start_ingress(APP, extra_env=traced_env)
    worker = start_worker(APP, extra_env=traced_env)
    record = redis.Redis.from_url(redis_server.db_url(1))
    record.flushdb()

    body = webhook_payload("file-traced", note=BODY_MARKER)
    assert post_signed(url, body, WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: record.lrange("test:done", 0, -1) == [b"file-traced"], timeout=30, what="the retry to succeed")

    def attempts() -> list[Span]:
        return receiver.find(name="run/frameio_kit.handle_webhook")

    wait_until(lambda: len(attempts()) == 2, timeout=15, what="both attempt spans to be exported")
    server = receiver.find(name="POST /", kind=SERVER)
    assert len(server) == 1
    root = server[0]
    assert root.service == "frameio-kit-ingress"
    assert root.attributes["frameio.event.type"] == "file.ready"
    assert root.attributes["frameio.resource.id"] == "file-traced"
    assert root.attributes["frameio.account.id"] == "acc-1"
    assert root.attributes["frameio_kit.outcome"] == "enqueued"
    assert root.attributes["http.response.status_code"] == 202

    runs = sorted(attempts(), key=lambda s: s.attributes["frameio_kit.attempt"])
    for number, run in enumerate(runs, start=1):
        assert run.trace_id == root.trace_id
        assert run.parent_id == root.span_id  # siblings: the retry is not a child of the first attempt
        assert run.kind == CONSUMER
        assert run.service == "frameio-kit-worker"
        assert run.attributes["frameio_kit.attempt"] == number
        assert run.attributes["frameio.event.type"] == "file.ready"
        assert run.attributes["frameio.resource.id"] == "file-traced"
        assert run.attributes["frameio.account.id"] == "acc-1"
        assert run.attributes["frameio_kit.queue.wait_seconds"] >= 0
    assert [r.attributes["frameio_kit.outcome"] for r in runs] == ["retried", "done"]

    def complete() -> list[Span]:
        trace = receiver.trace(root.trace_id)
        return trace if len([s for s in trace if s.name.startswith("GET ")]) == 2 else []

    trace = wait_until(complete, timeout=15, what="the handler and API spans")
    for run in runs:
        handlers = [s for s in trace if s.name == "handle file.ready" and s.parent_id == run.span_id]
        assert len(handlers) == 1
        middleware = [s for s in trace if s.name == "frameio file.ready" and s.parent_id == handlers[0].span_id]
        assert len(middleware) == 1
    calls = [s for s in trace if s.name.startswith("GET ")]
    assert receiver.api_calls == 2
    for call in calls:
        assert call.attributes["url.path"] == "/v4/me"
        chain = ["frameio file.ready", "handle file.ready", "run/frameio_kit.handle_webhook", "POST /"]
        assert ancestors(call, trace) == chain

    # A worker's log lines lead to the trace.
    assert f"trace={root.trace_id}" in worker.output()
    assert_nothing_private(
        receiver.find(), WEBHOOK_SECRET, ACTION_SECRET, JOB_SIGNING_KEY, API_TOKEN, BODY_MARKER, "planned failure"
    )


def test_action_handed_off_to_a_worker_is_one_trace(
    start_ingress, start_worker, redis_client, redis_server, receiver, traced_env
):
    url = start_ingress(APP, extra_env=traced_env)
    start_worker(APP, extra_env=traced_env)
    record = redis.Redis.from_url(redis_server.db_url(1))
    record.flushdb()

    ids = {"interaction_id": "int-traced", "resource_id": "file-1", "account_id": "acc-1", "user_id": "user-1"}
    first = testing.action_payload("tests.export", **ids)
    assert "fields" in post_signed(url, first, ACTION_SECRET).json()
    submit = testing.action_payload("tests.export", data={"api_key": FORM_ANSWER}, **ids)
    assert post_signed(url, submit, ACTION_SECRET).json()["title"] == "Started"
    wait_until(lambda: record.lrange("test:exported", 0, -1) == [b"int-traced"], timeout=30, what="the job to run")

    job = wait_until(lambda: receiver.find(name="run/frameio_kit.handle_action_job"), timeout=15, what="job span")[0]

    def joined() -> list[Span]:
        found = receiver.trace(job.trace_id)
        return found if any(s.name == "POST /" for s in found) else []

    trace = wait_until(joined, timeout=15, what="the request span in the job's trace")
    request = next(s for s in trace if s.name == "POST /")
    assert request.service == "frameio-kit-ingress"
    assert request.attributes["frameio.interaction.id"] == "int-traced"
    assert job.service == "frameio-kit-worker"
    assert job.attributes["frameio.interaction.id"] == "int-traced"
    assert job.attributes["frameio_kit.outcome"] == "done"
    assert ancestors(job, trace)[-1] == "POST /"
    assert_nothing_private(receiver.find(), FORM_ANSWER, ACTION_SECRET, WEBHOOK_SECRET, JOB_SIGNING_KEY)


def test_incoming_traceparent_is_continued_through_the_queue(
    start_ingress, start_worker, redis_client, receiver, traced_env
):
    url = start_ingress(APP, extra_env=traced_env)
    start_worker(APP, extra_env=traced_env)
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    assert post_signed(url, webhook_payload("file-parented"), WEBHOOK_SECRET, headers=headers).status_code == 202

    def spans() -> list[Span]:
        found = receiver.trace(caller_trace)
        return found if any(s.name == "run/frameio_kit.handle_webhook" for s in found) else []

    trace = wait_until(spans, timeout=30, what="the worker span in the caller's trace")
    request = next(s for s in trace if s.name == "POST /")
    assert request.parent_id == caller_span
    run = next(s for s in trace if s.name == "run/frameio_kit.handle_webhook")
    assert run.parent_id == request.span_id
