"""The frameio-kit integration the benchmarks run: no-op, counting, sleeping handlers and a Form action.

Handlers count in Redis at BENCH_RECORD_URL (bench code, not product code).
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis

from frameio_kit import ActionEvent, App, Form, SelectField, SelectOption, TextField, WebhookEvent

app = App()
_record = aioredis.from_url(os.environ.get("BENCH_RECORD_URL", "redis://127.0.0.1:6379/15"))


# BENCH_ORDERED_BY=resource: the no-op handler with per-key ordering (docs/tenants.md), to measure its
# cost per task; bench/run_all.py then sequences the messages it pushes as the ingress would.
_ORDERED_BY = os.environ.get("BENCH_ORDERED_BY") or None


@app.on_webhook("bench.noop", ordered_by=_ORDERED_BY)  # type: ignore[arg-type]
async def noop(event: WebhookEvent) -> None:
    return None


@app.on_webhook("file.ready")
async def count(event: WebhookEvent) -> None:
    await _record.incr("bench:done")


@app.on_webhook("bench.sleep50")
async def sleep50(event: WebhookEvent) -> None:
    await asyncio.sleep(0.05)


@app.on_webhook("bench.sleep1s")
async def sleep1s(event: WebhookEvent) -> None:
    await asyncio.sleep(1.0)


@app.on_action("bench.form", name="Transcribe", description="Transcribe a file")
async def form(event: ActionEvent) -> Form:
    return Form(
        title="Transcribe",
        description="Pick a language",
        fields=[
            SelectField(label="Language", name="language", options=[SelectOption(name="English", value="en")]),
            TextField(label="Note", name="note"),
        ],
    )
