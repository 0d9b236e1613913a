"""The one adapter over kombu's Redis layout: the message envelope kombu stores in a queue list, and
the hash where it keeps delivered, unacknowledged messages.

The ingress writes Celery messages into the queue itself (one Lua call per batch, with the ledger and
de-duplication keys) and the queue gauges read the layout back, so both depend on how kombu's Redis
transport lays messages out. That layout is kombu's, not a documented API: it is used here only,
checked by `check()` at start-up, tested against a real kombu consumer, and kombu is bounded in
pyproject.toml.
"""

from __future__ import annotations

import binascii
import os
import socket
import time
from random import getrandbits
from typing import Any

import kombu
import orjson
from kombu.transport import redis as kombu_redis

from shared import tracing
from shared.errors import ConfigurationError
from shared.jobs.contract import ENQUEUED_AT_HEADER
from shared.jobs.signing import JobSigner

SUPPORTED = "kombu>=5.7,<5.8"

UNACKED_KEY = "unacked"
"""kombu's Redis transport default `unacked_key`: one hash per broker database, all queues."""

_ENVELOPE_KEYS = ("body", "content-encoding", "content-type", "headers", "properties")
_ORIGIN = f"frameio-kit-ingress-{os.getpid()}@{socket.gethostname()}"
_EMBED = orjson.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def check() -> None:
    """Raise ConfigurationError when the installed kombu's Redis layout is not the one written here."""
    channel = kombu_redis.Channel
    problems = []
    if getattr(channel, "unacked_key", None) != UNACKED_KEY:
        problems.append(f"Channel.unacked_key is {getattr(channel, 'unacked_key', None)!r}, not {UNACKED_KEY!r}")
    prepare = getattr(channel, "prepare_message", None)
    if not callable(prepare):
        problems.append("Channel.prepare_message is missing")
    else:
        envelope = prepare(channel.__new__(channel), b"")
        if tuple(sorted(envelope)) != tuple(sorted(_ENVELOPE_KEYS)):
            problems.append(f"messages have the fields {sorted(envelope)}, not {sorted(_ENVELOPE_KEYS)}")
    if problems:
        raise ConfigurationError(
            f"the installed kombu {kombu.__version__} stores Redis messages differently ({'; '.join(problems)}); "
            f"frameio-kit supports {SUPPORTED}"
        )


def new_id() -> str:
    """A task or delivery id in UUID form. Celery and kombu need ids unique, not unguessable: `uuid4()` reads
    the OS's random source (a system call, about 6% of the ingress's CPU per webhook with two per message),
    Python's generator does not, and it is re-seeded in a forked child (uvicorn's workers)."""
    h = f"{getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def build_task_message(
    task_name: str, kwargs: dict[str, Any], kwargsrepr: str, queue: str, signer: JobSigner | None = None
) -> bytes:
    """A Celery protocol-2 message as kombu's Redis transport stores it, its kwargs signed by `signer`
    (workers refuse unsigned jobs). Without a signer the kwargs go as they are: tests, and a worker
    parking a job it received signed (shared/jobs/ordering.py)."""
    task_id = new_id()
    # The signed kwargs are serialised once and spliced into the body: no second JSON pass.
    kwargs_json = signer.signed_json(task_name, kwargs) if signer is not None else orjson.dumps(kwargs)
    body = b"[[]," + kwargs_json + b"," + _EMBED + b"]"
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": kwargsrepr,
        "origin": _ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        ENQUEUED_AT_HEADER: time.time(),
    }
    if tracing.ACTIVE:
        tracing.inject(headers)
    return orjson.dumps(
        {
            "body": binascii.b2a_base64(body, newline=False).decode("ascii"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": new_id(),
            },
        }
    )


def task_of(message: bytes) -> tuple[str, dict[str, Any]]:
    """The task name and kwargs of a message as `build_task_message` wrote it (the event history keeps
    it to replay). Raises ValueError for anything else."""
    try:
        envelope = orjson.loads(message)
        task = envelope["headers"]["task"]
        kwargs = orjson.loads(binascii.a2b_base64(envelope["body"]))[1]
    except (orjson.JSONDecodeError, binascii.Error, KeyError, IndexError, TypeError) as exc:
        raise ValueError("not a task message") from exc
    if not isinstance(task, str) or not isinstance(kwargs, dict):
        raise ValueError("not a task message")
    return task, kwargs


def routing_key_of(message: bytes) -> str | None:
    """The queue a stored message was sent to (its `delivery_info.routing_key`), or None when the
    message does not parse as one of kombu's: what the ledger sweep puts it back on."""
    try:
        properties = orjson.loads(message).get("properties") or {}
        found = properties.get("delivery_info", {}).get("routing_key")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return found if isinstance(found, str) and found else None
