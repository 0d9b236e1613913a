"""The shared rate limiter against a real Redis (shared/ratelimit/): what it keys budgets by, what it
learns from Frame.io's headers, how it spreads a burst, what a 429 becomes, what reaches Redis. Frame.io
is faked at its transport (`httpx.MockTransport`) as a leaky bucket with the three documented headers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import redis

from frameio_kit import Client, RateLimited, RateLimitTransport, SyncRateLimitTransport
from frameio_kit.testing import RedisServer
from shared.errors import FrameioApiError
from shared.install import api as admin_api
from shared.ratelimit import limiter
from shared.ratelimit.endpoints import budget_of, identity_of
from shared.ratelimit.limiter import aclose_limiter, limit_waiters
from shared.ratelimit.transport import _proxy_mounts, limited_client_options
from shared.settings import get_settings
from tests.frameio_standin import FrameioStandIn
from tests.leak_support import redis_values

T = TypeVar("T")
TOKEN = "tok-" + "s3cr3t" * 6
FILE = "/v4/accounts/acc-A/files/0f8e2c1a-5b7d-4e3f-9a21-7c6d5e4f3a2b"


@pytest.fixture(autouse=True)
def _limiter_redis(redis_server: RedisServer, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    limit_waiters(None)  # as in the ingress: any number of calls may wait (workers allow 2 per budget)
    monkeypatch.setattr(limiter, "_redis_down_until", 0.0)


def test_a_worker_lets_two_calls_of_a_budget_wait_and_sends_the_rest_only_if_there_is_room_now():
    frameio = Bucket(calls=3, window=1.0)
    limit_waiters(2)
    try:
        api = client(frameio)

        async def burst() -> list[str]:
            await show(api, file_id="first")  # the limit is learned: 3 a second
            return list(await asyncio.gather(*(show(api, file_id=f"f{i}") for i in range(10))))

        outcomes = run(burst)
    finally:
        limit_waiters(None)
    # 2 go at once (the window's room); of the others, 2 wait for the next window and 6 are refused at once
    # (deferred, in a worker) instead of holding a worker slot each.
    assert outcomes.count("ok") == 4 and outcomes.count("refused") == 6
    assert frameio.statuses(429) == []


class Bucket:
    """Frame.io's leaky bucket for one endpoint, per account: `calls` per `window` seconds."""

    def __init__(self, calls: int, window: float, headers: bool = True) -> None:
        self.calls, self.window, self.headers = calls, window, headers
        self.levels: dict[str, tuple[float, float]] = {}
        self.seen: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        account = request.url.path.split("/")[3]
        now = time.monotonic()
        with self.lock:
            level, at = self.levels.get(account, (0.0, now))
            level = max(0.0, level - (now - at) * self.calls / self.window)
            status = 429 if level + 1 > self.calls else 200
            level += status == 200
            self.levels[account] = (level, now)
            self.seen.append((now, account, status))
        headers = (
            {
                "x-ratelimit-limit": str(self.calls),
                "x-ratelimit-remaining": str(int(self.calls - level)),
                "x-ratelimit-window": str(int(self.window * 1000)),
            }
            if self.headers
            else {}
        )
        return httpx.Response(status, json={"data": {"id": "f", "name": "a.mov"}}, headers=headers)

    def statuses(self, status: int, account: str = "acc-A") -> list[float]:
        return [t for t, a, s in self.seen if s == status and a == account]


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await make()
        finally:
            await aclose_limiter()

    return asyncio.run(main())


def client(fake: Callable[[httpx.Request], httpx.Response], token: str = TOKEN) -> Client:
    http = httpx.AsyncClient(transport=RateLimitTransport(httpx.MockTransport(fake)))
    return Client(token=token, base_url="http://frameio.test", httpx_client=http)


async def show(api: Client, account: str = "acc-A", file_id: str = "file-1") -> str:
    try:
        await api.files.show(account, file_id)
        return "ok"
    except RateLimited as exc:
        return "429" if exc.answered_429 else "refused"


def test_a_budget_is_the_account_the_token_and_the_endpoint_without_ids():
    budget = budget_of("get", FILE, f"Bearer {TOKEN}")
    assert budget is not None
    assert (budget.account, budget.method, budget.template) == ("acc-A", "GET", "/v4/accounts/{id}/files/{id}")
    assert budget.identity == identity_of(f"Bearer {TOKEN}") and TOKEN not in budget.identity
    assert budget.identity != identity_of("Bearer another-token")
    paths = {
        "/v4/me": "/v4/me",
        "/v4/accounts/adobe:123/files/copy": "/v4/accounts/{id}/files/copy",
        "/v4/accounts/a/folders/f/files/local_upload": "/v4/accounts/{id}/folders/{id}/files/local_upload",
        "/v4/accounts/a/metadata/field_definitions/9": "/v4/accounts/{id}/metadata/field_definitions/{id}",
        "/proxy/v4/accounts/a/workspaces/w/actions": "/v4/accounts/{id}/workspaces/{id}/actions",
        "/v4/accounts/a/files/f/new_thing": "/v4/accounts/{id}/files/{id}/new_thing",
    }
    for path, template in paths.items():
        found = budget_of("POST", path, None)
        assert found is not None and found.template == template, path
    assert budget_of("POST", "/ims/token/v3", None) is None  # not a Frame.io API call: never limited
    me = budget_of("GET", "/v4/me", None)
    assert me is not None and me.account == "-" and me.identity == "-"


def test_a_burst_is_spread_to_the_learned_rate_instead_of_answered_429(redis_client: redis.Redis):
    frameio = Bucket(calls=5, window=1.0)  # the table says 10 a second: the limit is learned, not assumed
    api = client(frameio)

    async def burst() -> list[str]:
        return list(await asyncio.gather(*(show(api, file_id=f"file-{i}") for i in range(30))))

    outcomes = run(burst)
    assert frameio.statuses(429) == []
    assert outcomes.count("ok") >= 10  # 5 at once, 5 more a window (1.1 s) later; the next are past MAX_WAIT
    assert outcomes.count("refused") >= 10  # the rest would have waited longer: refused, nothing sent
    assert len(frameio.seen) == outcomes.count("ok")
    sent = frameio.statuses(200)
    assert FrameioStandIn.most_in_any_window(sent, 1.0, after=sent[0] + 1.0) <= 5
    learned = redis_client.hgetall("frameio-kit:ratelimit-endpoint:GET /v4/accounts/{id}/files/{id}")
    assert learned == {b"limit": b"5", b"window": b"1000"}


def test_a_429_raises_rate_limited_after_the_window_and_fills_the_bucket():
    frameio = Bucket(calls=2, window=1.0)
    frameio.levels["acc-A"] = (2.0, time.monotonic())  # someone else spent this user's budget
    api = client(frameio)

    async def calls() -> tuple[RateLimited, float]:
        with pytest.raises(RateLimited) as first:
            await api.files.show("acc-A", "file-1")
        started = time.monotonic()
        await api.files.show("acc-A", "file-2")  # waits for the bucket to leak one call, then succeeds
        return first.value, time.monotonic() - started

    refusal, waited = run(calls)
    assert refusal.answered_429 and refusal.retry_after == pytest.approx(1.0)
    assert "GET /v4/accounts/{id}/files/{id}" in str(refusal) and TOKEN not in str(refusal)
    assert waited >= 1.0  # the window after a 429 (its bucket was full), not sent at once into another 429
    assert [s for _, _, s in frameio.seen] == [429, 200]


def test_accounts_have_independent_budgets():
    frameio = Bucket(calls=2, window=60.0)
    api = client(frameio)

    async def calls() -> tuple[list[str], list[str], float]:
        a = [await show(api, "acc-A", f"f{i}") for i in range(4)]
        started = time.monotonic()
        b = [await show(api, "acc-B", f"f{i}") for i in range(2)]
        return a, b, time.monotonic() - started

    a, b, b_seconds = run(calls)
    assert a == ["ok", "ok", "refused", "refused"]
    assert b == ["ok", "ok"] and b_seconds < 1.0
    assert frameio.statuses(429, "acc-A") == [] and frameio.statuses(429, "acc-B") == []


def test_a_new_token_starts_from_the_limit_learned_for_the_endpoint():
    frameio = Bucket(calls=3, window=60.0)

    async def calls() -> list[str]:
        await show(client(frameio, "first-token"), "acc-B")
        other = client(frameio, "second-token")  # another account and user: a budget of its own, of 3
        return [await show(other, file_id=f"f{i}") for i in range(4)]

    assert run(calls) == ["ok", "ok", "ok", "refused"]  # no probe, no guess from the table (10 a minute)
    assert frameio.statuses(429) == []


def test_neither_the_token_nor_a_resource_id_reaches_redis(redis_server: RedisServer, redis_client: redis.Redis):
    frameio = Bucket(calls=5, window=1.0)
    api = client(frameio)
    run(lambda: show(api, "acc-A", "0f8e2c1a-5b7d-4e3f-9a21-7c6d5e4f3a2b"))
    stored = redis_values(redis_server.url)
    assert stored, "the limiter wrote nothing"
    for key, value in stored:
        for secret in (TOKEN, "0f8e2c1a", "s3cr3t"):
            assert secret not in key and secret not in value, (key, value)
    assert any(identity_of(f"Bearer {TOKEN}") in key for key, _ in stored)


def test_a_redis_outage_lets_calls_through_without_asking_it_again_for_a_while(monkeypatch: pytest.MonkeyPatch):
    from frameio_kit.testing import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    frameio = Bucket(calls=5, window=1.0)

    async def calls() -> list[str]:
        api = client(frameio)
        return [await show(api, file_id=f"f{i}") for i in range(8)]

    assert run(calls) == ["ok"] * 5 + ["429"] * 3  # unthrottled; Frame.io's 429s still raise RateLimited
    assert limiter._redis_down()


def test_with_the_limiter_off_nothing_is_stored_and_a_429_is_still_rate_limited(
    monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
):
    monkeypatch.setenv("FRAMEIO_KIT_RATE_LIMIT", "off")
    get_settings.cache_clear()
    frameio = Bucket(calls=1, window=1.0)

    async def calls() -> list[str]:
        api = client(frameio)
        return [await show(api), await show(api)]

    assert run(calls) == ["ok", "429"]
    assert redis_client.keys("frameio-kit:ratelimit*") == []


def test_an_endpoint_without_headers_keeps_its_documented_default():
    frameio = Bucket(calls=100, window=1.0, headers=False)  # the table: 10 a second for GET files/{id}

    async def burst() -> list[str]:
        api = client(frameio)
        return list(await asyncio.gather(*(show(api, file_id=f"f{i}") for i in range(12))))

    outcomes = run(burst)
    assert outcomes.count("ok") == 12  # 10 at once, 2 within the wait
    sent = sorted(t for t, _, _ in frameio.seen)
    assert sent[-1] - sent[0] >= 0.15


def test_the_blocking_transport_shares_the_budget():
    frameio = Bucket(calls=2, window=60.0)
    with httpx.Client(transport=SyncRateLimitTransport(httpx.MockTransport(frameio))) as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert [http.get(f"http://frameio.test{FILE}", headers=headers).status_code for _ in range(2)] == [200, 200]
        with pytest.raises(RateLimited):
            http.get(f"http://frameio.test{FILE}", headers=headers)
    assert [s for _, _, s in frameio.seen] == [200, 200]


def test_environment_proxies_are_kept_and_limited():
    mounts = _proxy_mounts({"https": "http://proxy.test:3128", "no": "localhost,.internal.test,10.0.0.1"})
    assert isinstance(mounts["https://"], RateLimitTransport)
    assert mounts["all://localhost"] is None and mounts["all://*.internal.test"] is None
    assert mounts["all://10.0.0.1"] is None
    assert _proxy_mounts({"https": "http://proxy.test:3128", "no": "*"}) == {}
    options = limited_client_options()
    assert isinstance(options["transport"], RateLimitTransport)


class _Sequence:
    """Answers in order: (status, headers) pairs, then 201 for ever."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.monotonic())
        status, headers = self.answers.pop(0) if self.answers else (201, {})
        body: dict[str, Any] = {"data": {"id": "act-1", "secret": "s"}} if status == 201 else {"errors": []}
        return httpx.Response(status, json=body, headers=headers)


def _admin(fake: Callable[[httpx.Request], httpx.Response], limited: bool) -> admin_api.FrameioAdminApi:
    transport: httpx.AsyncBaseTransport = httpx.MockTransport(fake)
    if limited:
        transport = RateLimitTransport(transport)
    return admin_api.FrameioAdminApi(TOKEN, httpx.AsyncClient(transport=transport), "http://frameio.test")


@pytest.mark.parametrize("limited", [True, False], ids=["through the limiter", "plain client"])
def test_the_install_api_sends_a_429d_create_again_after_the_window(limited: bool):
    window = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-window": "600"}
    frameio = _Sequence((429, window), (429, window))

    async def create() -> tuple[str, str]:
        return await _admin(frameio, limited).create_action(
            "acc-A", "ws-1", name="A", description="", event="e", url="u"
        )

    assert run(create) == ("act-1", "s")
    assert len(frameio.times) == 3
    assert frameio.times[1] - frameio.times[0] >= 0.55 and frameio.times[2] - frameio.times[1] >= 0.55


def test_the_install_api_gives_up_after_its_patience(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(admin_api, "RATE_LIMIT_PATIENCE", 1.0)
    window = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-window": "600"}
    frameio = _Sequence(*[(429, window)] * 10)

    async def create() -> None:
        await _admin(frameio, limited=False).create_action(
            "acc-A", "ws-1", name="A", description="", event="e", url="u"
        )

    with pytest.raises(FrameioApiError) as failed:
        run(create)
    assert failed.value.status == 429 and TOKEN not in str(failed.value)
    assert len(frameio.times) == 2
