"""HTTP routes: POST / for webhooks and custom actions, /healthz and /readyz.

Order on POST /: size limit, signature headers present and fresh, then the event type picks the
handler and so the secret; nothing in the body is acted on before the signature matches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ingress import metrics
from ingress.actions import answer_action
from ingress.state import IngressState
from shared import tracing
from shared.core.events import ActionEvent, AnyEvent
from shared.core.registry import HandlerSpec
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_timestamp, signature_matches
from shared.errors import (
    EventValidationError,
    InvalidPayload,
    PayloadTooLarge,
    RequestRejected,
    RequestTimedOut,
    SecretResolutionError,
    ServiceUnavailable,
    SignatureInvalid,
)
from shared.install.context import bind_request, reset_request
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob

logger = logging.getLogger("frameio_kit.ingress")

_ACCEPTED = Response(status_code=202)


async def receive_event(request: Request) -> Response:
    """Verify a Frame.io delivery; enqueue a webhook or answer an action."""
    if tracing.ACTIVE:
        return await _traced(request)
    return await _receive_event(request)


async def _traced(request: Request) -> Response:
    """The request in a server span, child of an incoming `traceparent` if there is one."""
    with tracing.span("POST /", "SERVER", tracing.extract(request.headers), {"http.request.method": "POST"}) as span:
        try:
            response = await _receive_event(request)
        except Exception as exc:
            span.set_attribute("http.response.status_code", status_of(exc))
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        return response


def status_of(exc: Exception) -> int:
    """The status the exception handlers (ingress/app.py) answer `exc` with."""
    if isinstance(exc, RequestRejected):
        return exc.status_code
    return 503 if isinstance(exc, ServiceUnavailable) else 500


async def _receive_event(request: Request) -> Response:
    state: IngressState = request.app.state.kit
    started = time.perf_counter()
    event_type = "-"
    kind = "unknown"
    try:
        body = await _read_body(request, state.settings.max_body_bytes, state.settings.body_timeout)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        ts = parse_timestamp(timestamp)
        if timestamp is None or signature is None or ts is None:
            raise SignatureInvalid("missing, malformed or stale signature headers")
        payload = _parse_object(body)
        raw_type = payload.get("type")
        if not isinstance(raw_type, str) or not raw_type:
            raise InvalidPayload("payload has no 'type'", status_code=422)
        spec = state.app.lookup(raw_type)
        if spec is None:
            _verify_unhandled(state, body, timestamp, signature)
            event_type = raw_type
            _log(event_type, "ignored (no handler)", started)
            metrics.count_request("unhandled", "ignored")
            return Response(status_code=200)
        event_type = raw_type
        kind = spec.kind
        event = await _verified_event(state, spec, payload, body, timestamp, signature, ts)
        if tracing.ACTIVE:
            tracing.annotate(**tracing.event_attributes(event))
            tracing.current_span().add_event("verified")
        if spec.kind == "webhook":
            outcome = await _enqueue_webhook(state, event, body, ts)
            _log(event_type, outcome, started)
            metrics.count_request("webhook", outcome)
            return _ACCEPTED
        if not isinstance(event, ActionEvent):
            raise InvalidPayload("not an action payload", status_code=422)
        request_handle = bind_request(request)  # get_request() in the action handler
        try:
            response, outcome = await answer_action(state, spec, event, body)
        finally:
            reset_request(request_handle)
        _log(event_type, outcome, started)
        metrics.observe_action(started)
        metrics.count_request("action", outcome)
        return response
    except Exception as exc:
        _log(event_type, f"rejected ({type(exc).__name__})", started)
        metrics.count_rejected(kind, exc)
        raise


async def healthz(request: Request) -> Response:
    """Alive: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: Redis answers a PING within a second."""
    state: IngressState = request.app.state.kit
    if await state.redis_ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": "redis unreachable"}, status_code=503)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise (
            PayloadTooLarge(f"body larger than {limit} bytes")
            if declared.isdigit()
            else InvalidPayload("invalid Content-Length")
        )
    # Straight from ASGI `receive`: Starlette's stream() generator costs more than the read itself.
    # A client that trickles its body must not hold a request open: a plain timer that cancels
    # this task is much cheaper per request than an asyncio.timeout() scope.
    task = asyncio.current_task()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if task is not None:
            task.cancel()

    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
            if not message.get("more_body", False):
                return b"".join((*chunks, chunk)) if chunks else chunk
            chunks.append(chunk)
    except asyncio.CancelledError:
        if not expired or task is None:
            raise
        task.uncancel()
        raise RequestTimedOut(f"request body not received within {timeout:g}s") from None
    finally:
        timer.cancel()


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayload("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("body is not a JSON object")
    return payload


def _verify_unhandled(state: IngressState, body: bytes, timestamp: str, signature: str) -> None:
    """An event type with no handler: acknowledge it only if a configured secret signed it, so
    Frame.io stops retrying, without telling an unsigned caller which types are handled."""
    for secret in state.fallback_secrets:
        if signature_matches(body, timestamp, signature, secret):
            return
    raise SignatureInvalid()


async def _verified_event(
    state: IngressState,
    spec: HandlerSpec,
    payload: dict[str, Any],
    body: bytes,
    timestamp: str,
    signature: str,
    ts: int,
) -> AnyEvent:
    secret = state.app.static_secret(spec)
    if secret is not None and not signature_matches(body, timestamp, signature, secret):
        raise SignatureInvalid()
    payload["timestamp"] = ts
    try:
        event = spec.model.model_validate(payload)
    except ValidationError as exc:
        if secret is None:
            # A resolver needs the event to find the secret; an unverifiable body learns nothing.
            raise SignatureInvalid() from None
        raise EventValidationError(spec.event_type, _invalid_fields(exc)) from None
    if secret is None:
        try:
            resolved = await state.app.resolve_secrets(spec, event)
        except SecretResolutionError as exc:
            logger.error("%s: %s", spec.event_type, exc)
            raise
        if not any(signature_matches(body, timestamp, signature, s) for s in resolved):
            raise SignatureInvalid()
    return event


def _invalid_fields(exc: ValidationError) -> str:
    fields = sorted({".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors()})
    return ", ".join(fields[:10])


async def _enqueue_webhook(state: IngressState, event: AnyEvent, body: bytes, ts: int) -> str:
    job = WebhookJob.for_delivery(event.type, event.resource_id, body, ts)
    enqueue_started = time.perf_counter()
    fresh = await state.enqueue(HANDLE_WEBHOOK, job.model_dump(), job.describe(), job.idempotency_key)
    metrics.observe_enqueue(enqueue_started)
    return "enqueued" if fresh else "duplicate"


def _log(event_type: str, outcome: str, started: float) -> None:
    if tracing.ACTIVE:
        tracing.annotate(**{"frameio_kit.outcome": outcome})
    logger.info("%s %s %.1fms", event_type, outcome, (time.perf_counter() - started) * 1000)
