"""Looking for secrets where they must not be: text expanded through what it encodes (JSON, base64),
and every key and value in a Redis server."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator

import redis

_B64 = re.compile(r"^[A-Za-z0-9+/=_-]{16,}$")


def expand(value: str, depth: int = 0) -> Iterator[str]:
    """The text and whatever it encodes: JSON strings, base64 bodies (kombu's message bodies)."""
    yield value
    if depth > 4:
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        for text in _strings(parsed):
            yield from expand(text, depth + 1)
    if _B64.match(value):
        try:
            yield from expand(base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-8", "replace"), depth + 1)
        except (binascii.Error, ValueError):
            pass


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def redis_values(url: str) -> list[tuple[str, str]]:
    """Every key and value in every non-empty database, decoded."""
    found: list[tuple[str, str]] = []
    for db in range(16):
        client = redis.Redis.from_url(url.rsplit("/", 1)[0] + f"/{db}")
        for key in client.scan_iter():
            kind = client.type(key).decode()
            name = key.decode("utf-8", "replace")
            if kind == "string":
                values = [client.get(key)]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "hash":
                values = [x for pair in client.hgetall(key).items() for x in pair]
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            else:
                values = []
            found.append((f"db{db}:{name} (key)", name))
            found.extend((f"db{db}:{name}", v.decode("utf-8", "replace")) for v in values if v is not None)
        client.close()
    return found


def leaks_in(where: str, text: str, needles: list[str]) -> list[str]:
    """Each needle found in `text` or in what it encodes, named by its first characters and `where`."""
    return [f"{needle[:12]}... in {where}" for piece in expand(text) for needle in needles if needle in piece]
