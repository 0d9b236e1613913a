"""HTTP routes: POST / for webhooks and custom actions, /healthz and /readyz.

Order on POST /: size limit, signature headers present and fresh, then the event type picks the
handler and so the secret; nothing in the body is acted on before the signature matches. Under
install records the account's ids pick the secret and the body is validated only once signed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ingress import metrics
from ingress.actions import answer_action
from ingress.state import IngressState
from shared import tracing
from shared.app.registry import HandlerSpec
from shared.context import bind_request, reset_request
from shared.core.events import ActionEvent, AnyEvent
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
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob, describe_webhook
from shared.logs import log_info

logger = logging.getLogger("frameio_kit.ingress")

_ACCEPTED = Response(status_code=202)
UNHANDLED_HEADER = "X-Frameio-Kit-Unhandled"
# 200 so Frame.io stops retrying; the header (sent only to a signed caller) lets `frameio-kit send` say why.
_IGNORED = Response(status_code=200, headers={UNHANDLED_HEADER: "no-handler"})
_TIMESTAMP = TIMESTAMP_HEADER.lower().encode("latin-1")
_SIGNATURE = SIGNATURE_HEADER.lower().encode("latin-1")


class EventEndpoint:
    """POST /, as a plain ASGI app: one verified Frame.io delivery, enqueued or answered.

    `IngressApp` (ingress/app.py) calls it before Starlette's middleware stack and router, and it
    builds no `Request` on the webhook path: those layers cost more CPU per webhook than its HMAC
    check and validation together (docs/performance.md). Errors are answered here, as the app's
    exception handlers answer them on other routes (`error_response`).
    """

    def __init__(self, state: IngressState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if tracing.ACTIVE:
            response = await self._traced(scope, receive)
        else:
            response = await self._answer(scope, receive)
        await response(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive) -> Response:
        """The request in a server span, child of an incoming `traceparent` if there is one."""
        parent = tracing.extract(Headers(scope=scope))
        with tracing.span("POST /", "SERVER", parent, {"http.request.method": "POST"}) as span:
            response = await self._answer(scope, receive)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        state = self.state
        started = time.perf_counter()
        event_type = "-"
        kind = "unknown"
        try:
            declared, timestamp, signature = _frameio_headers(scope)
            settings = state.settings
            body = await _read_body(receive, declared, settings.max_body_bytes, settings.body_timeout)
            if signature is not None:
                _check_timestamp_format(timestamp)
            ts = parse_timestamp(timestamp)
            if timestamp is None or signature is None or ts is None:
                raise SignatureInvalid()
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
                return _IGNORED
            event_type = raw_type
            kind = spec.kind
            event = await _verified_event(state, spec, payload, body, timestamp, signature, ts)
            if tracing.ACTIVE:
                tracing.annotate(**tracing.event_attributes(event))
                tracing.current_span().add_event("verified")
            if spec.kind == "webhook":
                outcome = await _enqueue_webhook(state, spec, event, body, ts)
                _log(event_type, outcome, started)
                metrics.count_request("webhook", outcome)
                return _ACCEPTED
            if not isinstance(event, ActionEvent):
                raise InvalidPayload("not an action payload", status_code=422)
            request_handle = bind_request(Request(scope, receive))  # get_request() in the action handler
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
            return error_response(exc, "POST /")


def error_response(exc: Exception, where: str) -> Response:
    """The answer to a request that raised `exc`: a refusal's status and public message, 503 with
    Retry-After when a dependency is down, 500 (logged with its traceback) for anything else."""
    if isinstance(exc, RequestRejected):
        return JSONResponse({"error": exc.public_message}, status_code=exc.status_code)
    if isinstance(exc, ServiceUnavailable):
        return JSONResponse({"error": exc.public_message}, status_code=503, headers={"Retry-After": "5"})
    if isinstance(exc, ClientDisconnect):
        return Response(status_code=400)  # nobody is left to read it
    logger.error("unexpected error on %s", where, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


def _check_timestamp_format(timestamp: str | None) -> None:
    """A signed request whose timestamp header is missing or not an integer is malformed (400, as
    v0.0.10 answers). Only the header is looked at, never the body; a request without a signature
    stays 401, so unsigned junk learns nothing of what a signed one would need."""
    if timestamp is None:
        raise InvalidPayload(f"Missing {TIMESTAMP_HEADER} header")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise InvalidPayload(f"Invalid {TIMESTAMP_HEADER} header format")


def _frameio_headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """Content-Length and the two signature headers, in one pass over the raw list (the first of
    each counts, as with Starlette's `Headers.get`)."""
    declared = timestamp = signature = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if declared is None:
                declared = value.decode("latin-1")
        elif name == _TIMESTAMP:
            if timestamp is None:
                timestamp = value.decode("latin-1")
        elif name == _SIGNATURE and signature is None:
            signature = value.decode("latin-1")
    return declared, timestamp, signature


async def healthz(request: Request) -> Response:
    """Alive: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: Redis answers a PING within a second."""
    state: IngressState = request.app.state.kit
    if await state.redis_ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": "redis unreachable"}, status_code=503)


async def _read_body(receive: Receive, declared: str | None, limit: int, timeout: float) -> bytes:
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise (
            PayloadTooLarge(f"body larger than {limit} bytes")
            if declared.isdigit()
            else InvalidPayload("invalid Content-Length")
        )
    # Straight from ASGI `receive`: Starlette's stream() generator costs more than the read itself.
    # A client that trickles its body must not hold a request open: one timer cancels the task with a
    # message of its own (lighter than `asyncio.timeout`'s context manager, on every request).
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("_read_body runs in a task")
    loop = asyncio.get_running_loop()
    timer = loop.call_at(loop.time() + timeout, task.cancel, _BODY_DEADLINE)
    chunks: list[bytes] = []
    size = 0
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
    except asyncio.CancelledError as exc:
        if not (exc.args and exc.args[0] is _BODY_DEADLINE):
            raise
        task.uncancel()
        raise RequestTimedOut(f"request body not received within {timeout:g}s") from None
    finally:
        timer.cancel()


_BODY_DEADLINE = "frameio-kit: request body deadline"


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
    app = state.app
    secret = app.static_secret(spec)
    if secret is not None:
        if not signature_matches(body, timestamp, signature, secret):
            raise SignatureInvalid()
        return _validated(spec, payload, ts)
    probe = app.secret_probe(spec, payload)
    if probe is not None:
        # Install records pick the secret from a few ids: the body is validated only once signed.
        await _check_signature(state, spec, probe, body, timestamp, signature)
        event = _validated(spec, payload, ts)
        if _secret_ids(event) != _secret_ids(probe):
            raise SignatureInvalid()  # one parse feeds both, so never; refused rather than trusted if it were
        return event
    # A resolver of the integration's own is promised the whole event, so validation comes first;
    # a body that fails it learns nothing (401, as a bad signature).
    payload["timestamp"] = ts
    try:
        event = spec.model.model_validate(payload)
    except ValidationError:
        raise SignatureInvalid() from None
    await _check_signature(state, spec, event, body, timestamp, signature)
    return event


def _validated(spec: HandlerSpec, payload: dict[str, Any], ts: int) -> AnyEvent:
    """The event of a signed body; one that does not fit the model is the sender's error (422)."""
    payload["timestamp"] = ts
    try:
        return spec.model.model_validate(payload)
    except ValidationError as exc:
        raise EventValidationError(spec.event_type, _invalid_fields(exc)) from None


async def _check_signature(
    state: IngressState, spec: HandlerSpec, event: AnyEvent, body: bytes, timestamp: str, signature: str
) -> None:
    """A resolver that raises is our fault (503, logged as an error); one that knows no secret for
    the event's account is the caller's: 401 with a bad signature's body, at DEBUG only, since
    anyone can send such requests and each would otherwise be an error line and a 5xx."""
    try:
        secrets = await state.app.resolve_secrets(spec, event)
    except SecretResolutionError as exc:
        logger.error("%s: %s", spec.event_type, exc)
        raise
    if not secrets:
        logger.debug("%s: no signing secret for account %s", spec.event_type, event.account_id)
        raise SignatureInvalid()
    if not any(signature_matches(body, timestamp, signature, s) for s in secrets):
        raise SignatureInvalid()


def _secret_ids(event: AnyEvent) -> tuple[str, str, str]:
    """What picks an event's secrets under install records."""
    action_id = event.action_id if isinstance(event, ActionEvent) else ""
    return event.account_id, event.workspace_id, action_id


def _invalid_fields(exc: ValidationError) -> str:
    fields = sorted({".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors()})
    return ", ".join(fields[:10])


async def _enqueue_webhook(state: IngressState, spec: HandlerSpec, event: AnyEvent, body: bytes, ts: int) -> str:
    kwargs = WebhookJob.delivery_kwargs(event.type, event.resource_id, body, ts)
    # docs/tenants.md: the handler's queue, its account's shard, and its ordering key (all signed).
    queue, order = state.router.webhook(spec.queue, spec.ordered_by, event)
    if spec.queue is not None:
        kwargs["queue"] = spec.queue
    if order is not None:
        kwargs["order_key"] = order
    describe = describe_webhook(event.type, event.resource_id)
    enqueue_started = time.perf_counter()
    key = kwargs["idempotency_key"]
    fresh = await state.producer.enqueue(
        HANDLE_WEBHOOK, kwargs, describe, key, queue=queue, order_key=order, event=event
    )
    metrics.observe_enqueue(enqueue_started)
    return "enqueued" if fresh else "duplicate"


def _log(event_type: str, outcome: str, started: float) -> None:
    if tracing.ACTIVE:
        tracing.annotate(**{"frameio_kit.outcome": outcome})
    log_info(logger, "%s %s %.1fms", event_type, outcome, (time.perf_counter() - started) * 1000)
