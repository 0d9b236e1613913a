"""Signed Frame.io-shaped requests for the benchmarks, written as raw HTTP for wrk to replay."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from frameio_kit.testing import action_payload, webhook_payload
from shared.core.signature import compute_signature

WEBHOOK_SECRET = "bench-webhook-secret-1f3e"
ACTION_SECRET = "bench-action-secret-77aa"
JOB_SIGNING_KEY = "bench-job-signing-key-5d0c-0123456789abcdef"
BODY_BYTES = 1024


_IDS = {
    "account_id": "0c9a5c67-3a6b-4f43-9a49-0b7c1f1d2e3f",
    "workspace_id": "6d2b7bf2-8c1e-4d6a-9a35-2f0e5e7c4b11",
    "project_id": "a7c3e9d1-52f4-4b8e-8f0d-1c2b3a4d5e6f",
    "user_id": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b",
}


def webhook_body(index: int, tag: str, event_type: str = "file.ready") -> bytes:
    """A ~1 KB V4 webhook body, distinct per (tag, index) so de-duplication never short-circuits."""
    data = {
        "name": f"interview_take_{index:06d}_final_color_graded.mov",
        "media_type": "video/quicktime",
        "file_size": 1_834_221_004 + index,
        "status": "transcoded",
        "created_at": "2026-11-27T10:21:33.120Z",
        "updated_at": "2026-11-27T10:24:01.877Z",
        "view_url": f"https://next.frame.io/project/a7c3e9d1/view/{tag}-{index:09d}",
        "parent_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "tags": ["interview", "graded", "day-2"],
    }
    resource_id = f"{tag}-{index:09d}-4e5f-8a9b-0c1d2e3f4a5b"
    payload = webhook_payload(event_type, resource_id=resource_id, resource_type="file", data=data, **_IDS)
    pad = BODY_BYTES - len(orjson.dumps(payload)) - len(',"note":""')
    payload["note"] = "x" * max(pad, 0)
    return orjson.dumps(payload)


def action_body(index: int, tag: str, event_type: str = "bench.form") -> bytes:
    payload = action_payload(
        event_type,
        interaction_id=f"{tag}-{index:09d}",
        resource_id="9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        action_id="5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        **_IDS,
    )
    return orjson.dumps(payload)


def raw_request(body: bytes, secret: str, timestamp: int) -> bytes:
    signature = compute_signature(body, timestamp, secret)
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Frameio-Request-Timestamp: {timestamp}\r\n"
        f"X-Frameio-Signature: {signature}\r\n\r\n"
    )
    return head.encode("ascii") + body


def write_request_files(
    prefix: Path, per_thread: int, threads: int, tag: str, kind: str = "webhook", event_type: str | None = None
) -> None:
    """One file per wrk thread (`prefix.1`, `prefix.2`, ...): length-prefixed raw requests, all distinct."""
    timestamp = int(time.time())
    for thread in range(1, threads + 1):
        parts: list[bytes] = []
        for i in range(per_thread):
            index = thread * 10_000_000 + i
            if kind == "webhook" or (kind == "mixed" and i % 3 != 2):
                body = webhook_body(index, tag, event_type or "file.ready")
                req = raw_request(body, WEBHOOK_SECRET, timestamp)
            else:
                body = action_body(index, tag, event_type or "bench.form")
                req = raw_request(body, ACTION_SECRET, timestamp)
            parts.append(str(len(req)).encode("ascii") + b"\n" + req)
        Path(f"{prefix}.{thread}").write_bytes(b"".join(parts))
