"""Custom actions in depth, over real HTTP against real ingress (and worker) processes: multi-step
state, replayed retries, the time budget, hand-off to workers, resource filters, Redis state."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.actions.state import Interaction, MemoryActionState, RedisActionState, StepResult
from shared.errors import StepStillRunning
from tests.helpers import ACTION_SECRET, action_payload, post_signed, queue_length, sign_request, wait_until

pytestmark = pytest.mark.e2e

ACTIONS_APP = "tests.apps.actions:app"
REDIS_STATE = {"FRAMEIO_KIT_ACTION_STATE": "redis"}


def trigger(action: str, interaction: str, **extra: Any) -> dict[str, Any]:
    """The first call of an action, with its full context."""
    return action_payload(interaction, type=action, **extra)


def submission(action: str, interaction: str, data: dict[str, Any]) -> dict[str, Any]:
    """A form submission as Frame.io's own example shows it: no context fields at all."""
    return {"type": action, "interaction_id": interaction, "action_id": "act-1", "data": data}


def answer(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = post_signed(url, payload, ACTION_SECRET)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def run_wizard(urls: list[str], interaction: str) -> list[dict[str, Any]]:
    """The four calls of the three-step wizard, the n-th sent to urls[n % len(urls)]."""
    payloads = [
        trigger("tests.wizard", interaction),
        submission("tests.wizard", interaction, {"name": "Ada"}),
        submission("tests.wizard", interaction, {"color": "blue"}),
        submission("tests.wizard", interaction, {"size": "L"}),
    ]
    return [answer(urls[i % len(urls)], p) for i, p in enumerate(payloads)]


def test_three_step_wizard_sees_earlier_answers(start_ingress, redis_client, records):
    url = start_ingress(ACTIONS_APP)
    interaction = str(uuid.uuid4())

    answers = run_wizard([url], interaction)

    assert [a["title"] for a in answers] == ["Step 1", "Step 2", "Step 3", "Summary"]
    assert answers[3]["description"] == "Ada/blue/L"
    calls = records("wizard")
    assert [c["history"] for c in calls] == [[], [], [{"name": "Ada"}], [{"name": "Ada"}, {"color": "blue"}]]
    assert calls[3]["answers"] == {"name": "Ada", "color": "blue", "size": "L"}
    # Submissions came without context: each step sees the first call's user and resource.
    assert [(c["user"], c["resource"]) for c in calls] == [("user-1", "file-1")] * 4
    # Another interaction starts from nothing (the handler fails on the missing answers).
    other = answer(url, submission("tests.wizard", str(uuid.uuid4()), {"size": "S"}))
    assert other["title"] == "Something went wrong"
    assert records("wizard")[-1]["history"] == []


def test_retried_step_gets_the_same_answer_and_the_handler_runs_once(start_ingress, redis_client, records):
    url = start_ingress(ACTIONS_APP)
    payload = trigger("tests.once", str(uuid.uuid4()))

    first, retry = answer(url, payload), answer(url, payload)

    assert first == retry
    assert len(records("once")) == 1
    # A different step of the same interaction does run.
    answer(url, {**payload, "data": {"x": "1"}})
    assert len(records("once")) == 2


@pytest.mark.parametrize("state", ["memory", "redis"])
def test_retry_during_the_first_run_waits_for_its_answer(start_ingress, redis_client, records, state):
    url = start_ingress(ACTIONS_APP, extra_env={"FRAMEIO_KIT_ACTION_STATE": state})
    payload = trigger("tests.once", str(uuid.uuid4()), test_sleep=1.5)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(answer, url, payload)
        wait_until(lambda: records("once"), timeout=5, what="the first run to start")
        retry = pool.submit(answer, url, payload)
        results = first.result(timeout=10), retry.result(timeout=10)

    assert results[0] == results[1]
    assert len(records("once")) == 1


def test_overrunning_handler_is_answered_in_time_and_cancelled(start_ingress, redis_client, records):
    url = start_ingress(ACTIONS_APP)
    payload = trigger("tests.sleepy", str(uuid.uuid4()))

    started = time.perf_counter()
    response = post_signed(url, payload, ACTION_SECRET)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 5.0
    assert response.json() == {"title": "Still working", "description": "Try again in a minute."}
    states = wait_until(lambda: [r["state"] for r in records("sleepy") if r["state"] != "started"], timeout=5)
    assert states == ["cancelled"]
    # Frame.io's retry of that step gets the same answer at once, without another run.
    started = time.perf_counter()
    assert answer(url, payload) == response.json()
    assert time.perf_counter() - started < 1.0
    assert [r["state"] for r in records("sleepy")] == ["started", "cancelled"]


def test_hand_off_answers_at_once_and_the_job_runs_in_a_worker(start_ingress, start_worker, redis_client, records):
    url = start_ingress(ACTIONS_APP)
    worker = start_worker(ACTIONS_APP)
    interaction = str(uuid.uuid4())
    answer(url, trigger("tests.export", interaction))
    answer(url, submission("tests.export", interaction, {"format": "mp4"}))

    final = submission("tests.export", interaction, {"quality": "high"})
    body, headers = sign_request(final, ACTION_SECRET)
    with httpx.Client(base_url=url, timeout=10) as http:  # a warm connection, as Frame.io's would be
        http.get("/healthz")
        started = time.perf_counter()
        response = http.post("/", content=body, headers=headers)
        elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert response.json()["title"] == "Started"
    assert elapsed < 0.2
    jobs = wait_until(lambda: records("job"), timeout=20, what="the action job to run in the worker")
    assert jobs[0]["pid"] == worker.pid
    assert jobs[0]["answers"] == {"format": "mp4", "quality": "high"}
    assert jobs[0]["history"] == [{"format": "mp4"}]
    assert jobs[0]["interaction"] == interaction
    assert any(m["pid"] == worker.pid for m in records("middleware")), "middleware did not run in the worker"
    assert jobs[0]["user"] == "user-1", "the final submission omitted the user: filled from the first call"
    # A retry of the step replays the answer without queueing the job again. hand_off returns
    # once the broker holds a job, and the worker records before it acknowledges, so a second
    # job would be queued, unacknowledged or recorded by now.
    wait_until(lambda: redis_client.hlen("unacked") == 0, timeout=10, what="the first job to be acknowledged")
    assert answer(url, final) == response.json()
    assert queue_length(redis_client) == 0
    assert redis_client.hlen("unacked") == 0
    assert len(records("job")) == 1
    assert "token" not in worker.output().lower()


def test_action_on_the_wrong_resource_type_is_not_available(start_ingress, redis_client, records):
    url = start_ingress(ACTIONS_APP)

    on_file = answer(url, trigger("tests.folder_only", str(uuid.uuid4())))
    mixed = trigger(
        "tests.folder_only",
        str(uuid.uuid4()),
        resource={"id": "folder-1", "type": "folder"},
        resources=[{"id": "folder-1", "type": "folder"}, {"id": "file-2", "type": "file"}],
    )
    on_mixed = answer(url, mixed)

    assert on_file["title"] == "Action Not Available"
    assert on_mixed["title"] == "Action Not Available"
    assert records("folder_only") == []
    assert records("middleware") == []

    folders = trigger(
        "tests.folder_only",
        str(uuid.uuid4()),
        resource={"id": "folder-1", "type": "folder"},
        resources=[{"id": "folder-1", "type": "folder"}, {"id": "folder-2", "type": "folder"}],
        future_field={"kept": True},
    )
    assert answer(url, folders)["title"] == "Folder action ran"
    ran = records("folder_only")
    assert ran[0]["resources"] == ["folder-1", "folder-1", "folder-2"]
    assert "future_field" in ran[0]["extra"]


def test_wizard_alternating_between_two_ingresses_with_redis_state(start_ingress, redis_client, records):
    urls = [start_ingress(ACTIONS_APP, extra_env=REDIS_STATE), start_ingress(ACTIONS_APP, extra_env=REDIS_STATE)]
    interaction = str(uuid.uuid4())

    answers = run_wizard(urls, interaction)

    assert answers[3] == {"title": "Summary", "description": "Ada/blue/L"}
    calls = records("wizard")
    assert len({c["pid"] for c in calls}) == 2
    assert calls[3]["history"] == [{"name": "Ada"}, {"color": "blue"}]
    assert redis_client.keys("frameio-kit:action:*"), "state is not in Redis"

    # A retry landing on the other process while the first run is going waits for its answer.
    slow = trigger("tests.once", str(uuid.uuid4()), test_sleep=1.5)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(answer, urls[0], slow)
        wait_until(lambda: records("once"), timeout=5, what="the first run to start")
        retry = pool.submit(answer, urls[1], slow)
        assert first.result(timeout=10) == retry.result(timeout=10)
    assert len(records("once")) == 1


# -- the stores in process --------------------------------------------------------------------


def _step(answer: bytes, record: dict[str, Any] | None = None) -> Any:
    async def compute(interaction: Interaction) -> StepResult:
        return StepResult(answer, record)

    return compute


def test_memory_state_is_bounded_and_expires():
    now = [0.0]
    store = MemoryActionState(ttl=60, max_interactions=3, clock=lambda: now[0])

    async def scenario() -> None:
        for i in range(5):
            await store.run_step(f"i{i}", "s", _step(b"a", {"n": i}), wait=1)
        assert len(store) == 3
        # i0 was evicted: the same step runs again.
        assert (await store.run_step("i0", "s", _step(b"b"), wait=1)).how == "ran"
        assert (await store.run_step("i4", "s", _step(b"c"), wait=1)) == (b"a", "replayed")
        now[0] += 61
        assert (await store.run_step("i4", "s", _step(b"d"), wait=1)) == (b"d", "ran")
        assert len(store) == 1

    asyncio.run(scenario())


def test_redis_state_waiter_gives_up_after_its_wait(redis_server, redis_client):
    async def scenario() -> None:
        redis = Redis.from_url(redis_server.url)
        store = RedisActionState(redis, ttl=60, lock_ttl=5)
        started, release = asyncio.Event(), asyncio.Event()

        async def slow(interaction: Interaction) -> StepResult:
            started.set()
            await release.wait()
            return StepResult(b"x", {"a": 1}, context={"user": {"id": "u-1"}})

        first = asyncio.create_task(store.run_step("i", "s", slow, wait=1))
        await started.wait()
        with pytest.raises(StepStillRunning):
            await store.run_step("i", "s", _step(b"y"), wait=0.2)
        release.set()
        assert await first == (b"x", "ran")
        assert await store.run_step("i", "s", _step(b"z"), wait=1) == (b"x", "replayed")
        seen: list[Interaction] = []

        async def capture(interaction: Interaction) -> StepResult:
            seen.append(interaction)
            return StepResult(b"", None)

        await store.run_step("i", "s2", capture, wait=1)
        assert seen == [Interaction(history=[{"a": 1}], context={"user": {"id": "u-1"}})]
        await redis.aclose()

    asyncio.run(scenario())


def test_bad_action_payload_is_a_4xx(start_ingress, redis_client):
    url = start_ingress(ACTIONS_APP)
    response = post_signed(url, {"type": "tests.wizard", "data": {"a": 1}}, ACTION_SECRET)
    assert response.status_code == 422
    assert httpx.get(url + "/healthz", timeout=2).status_code == 200
