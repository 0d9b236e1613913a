"""Comparison designs served by plain uvicorn: a bare POST route, the obvious Celery design, the inline design.

- `bare`: one route that reads the body and answers 200 (the ceiling).
- `obvious`: verify + validate, then Celery's own `send_task` called in the async route (blocks the loop).
- `inline`: verify + validate, then the handler awaited in the route before answering (frameio-kit's design);
  the handler sleeps BENCH_INLINE_SLEEP seconds (default 1).
"""

from __future__ import annotations

import asyncio
import os

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.payloads import WEBHOOK_SECRET
from shared.core.events import WebhookEvent
from shared.core.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_timestamp, signature_matches
from shared.jobs.contract import HANDLE_WEBHOOK, WebhookJob
from shared.settings import get_settings

_INLINE_SLEEP = float(os.environ.get("BENCH_INLINE_SLEEP", "1.0"))


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


def _verified(body: bytes, request: Request) -> WebhookEvent | None:
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    ts = parse_timestamp(timestamp)
    if timestamp is None or signature is None or ts is None:
        return None
    if not signature_matches(body, timestamp, signature, WEBHOOK_SECRET):
        return None
    event = WebhookEvent.model_validate(orjson.loads(body))
    event.timestamp = ts
    return event


_celery = None


async def _obvious(request: Request) -> Response:
    global _celery
    if _celery is None:
        from workers.celery_app import create_celery

        _celery = create_celery(get_settings())
    body = await request.body()
    event = _verified(body, request)
    if event is None:
        return Response(status_code=401)
    job = WebhookJob.for_delivery(event.type, event.resource_id, body, event.timestamp)
    _celery.send_task(HANDLE_WEBHOOK, kwargs=job.model_dump())
    return Response(status_code=202)


async def _handler(event: WebhookEvent) -> None:
    await asyncio.sleep(_INLINE_SLEEP)


async def _inline(request: Request) -> Response:
    body = await request.body()
    event = _verified(body, request)
    if event is None:
        return Response(status_code=401)
    await _handler(event)
    return Response(status_code=200)


bare = Starlette(routes=[Route("/", _bare, methods=["POST"])])
obvious = Starlette(routes=[Route("/", _obvious, methods=["POST"])])
inline = Starlette(routes=[Route("/", _inline, methods=["POST"])])
