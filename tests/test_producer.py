"""The ingress producer: group-committed enqueue, de-duplication, its time budget and message ids."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from redis.asyncio import Redis

from ingress.producers.redis_broker import RedisProducer
from shared.errors import BrokerUnavailable
from shared.jobs.kombu_redis import build_task_message
from tests.helpers import RedisServer


def test_concurrent_enqueues_are_each_pushed_once_and_duplicates_detected(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[list[bool], list[bool], int]:
        client = Redis.from_url(redis_server.url)
        await client.flushall()
        producer = RedisProducer(client, "q", dedup_window=60, timeout=2.0)
        try:
            first = await asyncio.gather(*(producer.push(f"m{i}".encode(), f"k{i}") for i in range(300)))
            again = await asyncio.gather(*(producer.push(b"again", f"k{i}") for i in range(0, 300, 30)))
            return list(first), list(again), int(await client.llen("q"))
        finally:
            await producer.close()
            await client.aclose()

    first, again, queued = asyncio.run(scenario())
    assert all(first)
    assert not any(again)
    assert queued == 300


def test_a_broker_that_never_answers_gives_broker_unavailable_within_the_budget() -> None:
    async def scenario() -> tuple[str, float]:
        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(1 << 16):
                pass
            writer.close()

        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Redis(host="127.0.0.1", port=port, socket_timeout=1.5)
        producer = RedisProducer(client, "q", dedup_window=60, timeout=0.4)
        started = time.monotonic()
        try:
            await producer.push(b"m", "k")
            outcome = "enqueued"
        except BrokerUnavailable:
            outcome = "unavailable"
        elapsed = time.monotonic() - started
        await producer.close()
        await client.aclose()
        server.close()
        await server.wait_closed()
        return outcome, elapsed

    outcome, elapsed = asyncio.run(scenario())
    assert outcome == "unavailable"
    assert 0.3 < elapsed < 1.4


def test_task_messages_carry_distinct_ids() -> None:
    def ids_of(message: bytes) -> tuple[str, str]:
        decoded = json.loads(message)
        return decoded["headers"]["id"], decoded["properties"]["delivery_tag"]

    message = build_task_message("frameio_kit.handle_webhook", {"a": 1}, "{}", "q")
    decoded = json.loads(message)
    assert json.loads(base64.b64decode(decoded["body"]))[1] == {"a": 1}
    seen = {x for _ in range(1000) for x in ids_of(build_task_message("t", {}, "{}", "q"))}
    assert len(seen) == 2000
