"""The adapters over kombu's Redis layout and redis-py's connection internals, against the real objects."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio
from kombu import Connection, Consumer, Message, Queue
from kombu.transport import redis as kombu_redis

from shared import redis_direct
from shared.errors import ConfigurationError
from shared.jobs import kombu_redis as envelope
from shared.jobs.signing import JobSigner, unsigned
from tests.helpers import JOB_SIGNING_KEY, RedisServer


def test_a_message_the_ingress_writes_is_consumed_by_a_real_kombu_consumer(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    signer = JobSigner([JOB_SIGNING_KEY.encode()])
    redis_client.lpush("adapter-q", envelope.build_task_message("kit.task", {"n": 1}, "{'n': 1}", "adapter-q", signer))
    received: list[Message] = []
    with Connection(redis_server.url) as conn:
        queue = Queue("adapter-q", no_declare=True)
        with Consumer(
            conn, queues=[queue], callbacks=[lambda _body, message: received.append(message)], accept=["json"]
        ):
            conn.drain_events(timeout=5)
        assert len(received) == 1
        message = received[0]
        args, kwargs, _embed = message.decode()
        assert message.headers["task"] == "kit.task"
        assert message.delivery_info["routing_key"] == "adapter-q"
        assert args == []
        assert signer.verify("kit.task", kwargs) == "valid"
        assert unsigned(kwargs) == {"n": 1}
        message.ack()


def test_kombu_check_passes_on_the_installed_kombu_and_names_the_supported_versions_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelope.check()
    monkeypatch.setattr(kombu_redis.Channel, "unacked_key", "somewhere-else")
    with pytest.raises(ConfigurationError, match=r"unacked_key.*kombu>="):
        envelope.check()


def test_redis_check_passes_on_the_installed_redis_and_names_what_is_missing_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis_direct.check()
    monkeypatch.delattr(redis.asyncio.connection.AbstractConnection, "send_packed_command")
    with pytest.raises(ConfigurationError, match=r"send_packed_command.*redis>="):
        redis_direct.check()


def test_script_callers_run_scripts_and_reload_them_after_a_flush(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    caller = redis_direct.SyncScriptCaller(client)
    client.script_flush()
    assert caller.call(script, ("adapter-counter",), ()) == 1  # NOSCRIPT: loaded and run
    assert caller.call(script, ("adapter-counter",), ()) == 2
    caller.close()

    async def on_asyncio() -> int:
        aclient = redis.asyncio.Redis.from_url(redis_server.url)
        ascript = aclient.register_script("return redis.call('INCR', KEYS[1])")
        acaller = redis_direct.AsyncScriptCaller(aclient)
        await aclient.script_flush()
        try:
            return int(await acaller.call(ascript, ["adapter-counter"], []))
        finally:
            await acaller.close()
            await aclient.aclose()

    assert asyncio.run(on_asyncio()) == 3
    client.close()
