"""The real thing: the project's image built by Docker and its docker-compose.yml run with three worker
containers, driven only through published loopback ports (README, "Containers", command for command).

Needs a Docker engine and docker-compose; skipped without them, a failure when
FRAMEIO_KIT_REQUIRE_CONTAINERS=1 (CI). The stack comes up once for the module, in a scratch copy of
the checkout with a generated .env, under a project name of its own, and goes with `down -v`.
tests/containers/compose.test.yml says what the test adds to the compose file, and why.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.containers.stack import NUMBERS, REQUIRED, Secrets, Stack, engine_problem, scratch_checkout, write_env
from tests.helpers import ROOT, cli_command, post_signed, queue_length, sign_request, wait_until, webhook_payload

pytestmark = [pytest.mark.containers, pytest.mark.timeout(600)]

WORKERS = 3
QUEUE = "frameio-kit"
# Short enough that a partitioned worker's event comes back within the test, longer than any handler here.
VISIBILITY_TIMEOUT = 12
SETTINGS = {"FRAMEIO_APP": "tests.apps.containers:app", "FRAMEIO_KIT_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}


@pytest.fixture(scope="module")
def numbers(request: pytest.FixtureRequest) -> dict[str, str]:
    """Measurements, printed in the terminal summary (tests/conftest.py) whether or not output is captured."""
    return request.config.stash.setdefault(NUMBERS, {})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, numbers: dict[str, str]) -> Iterator[Stack]:
    problem = engine_problem()
    if problem is not None:
        if REQUIRED:
            pytest.fail(f"FRAMEIO_KIT_REQUIRE_CONTAINERS=1, but {problem}", pytrace=False)
        pytest.skip(f"container tests need Docker: {problem}")
    workdir = tmp_path_factory.mktemp("containers")
    checkout = scratch_checkout(workdir / "checkout")
    secrets = Secrets()
    write_env(checkout, secrets, SETTINGS)
    stack = Stack(checkout, secrets, workdir / "docker.log")
    started = time.monotonic()
    try:
        stack.compose("build", timeout=900)
        numbers["image build"] = f"{time.monotonic() - started:.1f} s (docker-compose build; layer cache as found)"
        yield stack
    finally:
        stack.compose("logs", "--no-color", "--timestamps", timeout=120)
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "45", timeout=300)
        # --no-prune keeps the layers, so the next session's build finds them in the cache.
        stack.docker("rmi", "--no-prune", stack.image, check=False)
        print(f"docker commands and container logs: {stack.log}")


@pytest.fixture(scope="module")
def stack(built: Stack, numbers: dict[str, str]) -> Stack:
    """The stack up with three worker containers, every container healthy by its own healthcheck."""
    started = time.monotonic()
    built.compose("up", "-d", "--scale", f"worker={WORKERS}")
    wait_until(lambda: _all_healthy(built, 3 + WORKERS), timeout=180, interval=0.5, what="every container healthy")
    numbers["up to all healthy"] = f"{time.monotonic() - started:.1f} s ({3 + WORKERS} containers)"
    return built


@pytest.fixture(scope="module")
def store(stack: Stack) -> Iterator[redis.Redis]:
    """The stack's Redis through its published loopback port (test override): db 1 holds the handlers' records."""
    client = redis.Redis(port=stack.redis_port, db=1, socket_timeout=5, socket_connect_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="module")
def broker(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis(port=stack.redis_port, db=0, socket_timeout=5, socket_connect_timeout=5)
    yield client
    client.close()


def test_the_image_builds_and_runs_as_a_non_root_user(built: Stack, numbers: dict[str, str]) -> None:
    image = json.loads(built.docker("image", "inspect", built.image).stdout)[0]
    assert image["Config"]["User"] == "frameio"
    uid = built.docker("run", "--rm", "--network", "none", built.image, "id", "-u").stdout.strip()
    assert uid != "0"
    numbers["image size"] = f"{image['Size'] / 1e6:.0f} MB"


def test_the_ingress_refuses_to_start_without_its_signing_secrets(built: Stack) -> None:
    # The image's own environment, as `docker run` gives it: no signing secrets. The other secrets
    # are set, so what is refused is the signing secrets alone.
    others = ["-e", f"FRAMEIO_KIT_JOB_SIGNING_KEYS={built.secrets.job_signing}"]
    others += ["-e", f"FRAMEIO_KIT_ENCRYPTION_KEYS={built.secrets.encryption}"]
    for given, missing in (
        ([], "WEBHOOK_SECRET"),
        (["-e", f"WEBHOOK_SECRET={built.secrets.webhook}"], "CUSTOM_ACTION_SECRET"),
    ):
        run = built.docker("run", "--rm", "--network", "none", *others, *given, built.image, check=False, timeout=60)
        assert run.returncode != 0, run.stdout + run.stderr
        assert missing in run.stderr, run.stderr


def test_every_service_becomes_healthy_by_its_own_healthcheck(stack: Stack) -> None:
    services = yaml.safe_load((stack.dir / "docker-compose.yml").read_text())["services"]
    for name in ("redis", "ingress", "worker", "flower"):
        containers = stack.containers(name)
        assert len(containers) == (WORKERS if name == "worker" else 1), name
        for container in containers:
            state = stack.inspect(container)
            assert state["Config"]["Healthcheck"]["Test"] == services[name]["healthcheck"]["test"], name
            assert state["State"]["Health"]["Status"] == "healthy", (name, state["State"]["Health"]["Log"][-1:])
    assert stack.compose("ps").stdout.count("(healthy)") == 3 + WORKERS


def test_a_webhook_from_frameio_kit_send_is_handled_by_a_worker_container(stack: Stack, store: redis.Redis) -> None:
    resource = f"send-{uuid.uuid4().hex[:8]}"
    # --secret=VALUE: a random secret may begin with "-", which argparse would read as an option.
    argv = cli_command("send", "file.ready", "--url", stack.ingress_url, f"--secret={stack.secrets.webhook}")
    sent = subprocess.run(
        [*argv, "--resource-id", resource], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert sent.returncode == 0 and "202" in sent.stdout, sent.stdout + sent.stderr
    done = wait_until(lambda: _records_for(store, "done", resource), timeout=30, interval=0.1, what="the event done")
    assert done[0]["host"] in _worker_hosts(stack)
    # The worker logs `done` just after the handler's own record.
    transitions = wait_until(lambda: _transitions(stack, resource, "done"), timeout=30, interval=0.5, what="logs")
    assert transitions["done"] == 1, transitions


def test_300_webhooks_are_handled_once_each_across_three_worker_containers(
    stack: Stack, store: redis.Redis, broker: redis.Redis, numbers: dict[str, str]
) -> None:
    resources = [f"bulk-{i}" for i in range(300)]
    started = time.monotonic()
    # One client for all: a new httpx client per request costs more CPU than the ingress spends on it.
    with httpx.Client(base_url=stack.ingress_url, timeout=10) as client, ThreadPoolExecutor(16) as pool:

        def post(resource: str) -> httpx.Response:
            body, headers = sign_request(webhook_payload(resource), stack.secrets.webhook)
            return client.post("/", content=body, headers=headers)

        responses = list(pool.map(post, resources))
    posted = time.monotonic() - started
    assert collections.Counter(r.status_code for r in responses) == {202: 300}
    wait_until(lambda: _done_count(store, resources) == 300, timeout=120, interval=0.1, what="300 webhooks handled")
    numbers["300 webhooks, 3 worker containers"] = (
        f"{time.monotonic() - started:.2f} s from the first POST to the last completion (POSTs took {posted:.2f} s)"
    )

    _wait_quiet(broker)
    done = [d for d in _records(store, "done") if d["resource"] in set(resources)]
    assert sorted(d["resource"] for d in done) == sorted(resources)  # each exactly once
    per_host = collections.Counter(d["host"] for d in done)
    assert set(per_host) == _worker_hosts(stack), per_host
    assert all(count > 0 for count in per_host.values())
    numbers["events per worker container"] = ", ".join(str(n) for n in sorted(per_host.values()))


def test_flower_lists_the_three_workers_behind_basic_auth(stack: Stack) -> None:
    assert httpx.get(stack.flower_url + "/api/workers", timeout=10).status_code == 401
    wrong = (stack.secrets.flower_user, "not-the-password")
    assert httpx.get(stack.flower_url + "/api/workers", auth=wrong, timeout=10).status_code == 401

    def workers() -> list[str]:
        response = httpx.get(
            stack.flower_url + "/api/workers", params={"refresh": "1"}, auth=stack.secrets.flower_auth, timeout=15
        )
        names = sorted(response.json()) if response.status_code == 200 else []
        return names if len(names) >= WORKERS else []

    names = wait_until(workers, timeout=60, interval=1, what="Flower listing the workers")
    assert all(n.startswith("frameio-kit-") for n in names), names
    assert {n.split("@", 1)[1] for n in names} == _worker_hosts(stack)


def test_a_worker_stopped_mid_handler_finishes_the_event(
    stack: Stack, store: redis.Redis, broker: redis.Redis, numbers: dict[str, str]
) -> None:
    resource = f"sigterm-{uuid.uuid4().hex[:8]}"
    _post(stack, resource, test_sleep=5)
    host = _started_on(store, resource)
    container = _container_of(stack, host)
    grace = _stop_grace(stack)

    # What `docker-compose stop` does, for one container of the scaled service: SIGTERM, then SIGKILL after the grace.
    started = time.monotonic()
    stack.docker("stop", "--time", str(grace), container, timeout=grace + 30)
    stopped = time.monotonic() - started
    done = wait_until(lambda: _records_for(store, "done", resource), timeout=60, interval=0.2, what="the event done")
    assert stack.inspect(container)["State"]["ExitCode"] == 0
    where = "the stopped container" if done[0]["host"] == host else "another container"
    numbers["SIGTERM mid-handler"] = f"worker exited after {stopped:.1f} s (grace {grace} s), event done on {where}"

    stack.docker("start", container)
    wait_until(lambda: stack.health(container) == "healthy", timeout=120, interval=0.5, what="the worker healthy again")
    _wait_quiet(broker)
    assert len(_records_for(store, "done", resource)) == 1


def test_a_partitioned_worker_mid_handler_loses_the_event_to_another_exactly_once_and_recovers(
    stack: Stack, store: redis.Redis, broker: redis.Redis, numbers: dict[str, str]
) -> None:
    resource = f"partition-{uuid.uuid4().hex[:8]}"
    _post(stack, resource, test_sleep=5)
    host = _started_on(store, resource)
    container = _container_of(stack, host)
    network = stack.network()

    stack.docker("network", "disconnect", network, container)
    cut = time.monotonic()
    restarted = wait_until(
        lambda: _records_for(store, "started", resource)[1:],
        timeout=VISIBILITY_TIMEOUT + 60,
        interval=0.1,
        what="redelivery",
    )
    redelivered = time.monotonic() - cut
    assert restarted[0]["host"] != host, "the partitioned worker cannot have reached Redis"
    done = wait_until(lambda: _records_for(store, "done", resource), timeout=30, interval=0.1, what="the event done")
    completed = time.monotonic() - cut
    assert done[0]["host"] != host
    stack.docker("network", "connect", network, container)
    healed = time.monotonic()

    batches = itertools.count()

    def handles_events_again() -> bool:
        # A fresh batch each round: the stranded worker counts as recovered once it completes some of them.
        batch = [f"after-partition-{next(batches)}-{i}" for i in range(12)]
        for r in batch:
            _post(stack, r)
        wait_until(lambda: _done_count(store, batch) == len(batch), timeout=30, interval=0.1, what="a batch handled")
        return any(d["host"] == host for d in _records(store, "done") if d["resource"] in batch)

    wait_until(handles_events_again, timeout=180, interval=0.5, what="the stranded worker handling events again")
    recovered = time.monotonic() - healed
    wait_until(lambda: stack.health(container) == "healthy", timeout=120, interval=0.5, what="the worker healthy")
    _wait_quiet(broker)
    # Completed once by the stack: one `done` transition in all the workers' logs; the stranded attempt
    # failed (its Redis calls timed out) and its retry found the completion marker. The handler's own
    # record from the stranded worker may still land after the heal: TCP delivers the write its client
    # had given up on. That is at-least-once for a handler's side effects, as the docs say (idempotency key).
    transitions = _transitions(stack, resource)
    assert transitions["done"] == 1, transitions
    assert transitions["started"] == 2, transitions
    numbers["partition: redelivery to another worker"] = (
        f"{redelivered:.1f} s after the disconnect, done after {completed:.1f} s "
        f"(visibility timeout {VISIBILITY_TIMEOUT} s, 5 s handler)"
    )
    numbers["partition: stranded worker handling events again"] = f"{recovered:.1f} s after the reconnect"


def test_queued_webhooks_survive_a_redis_restart_with_no_worker_running(
    stack: Stack, store: redis.Redis, broker: redis.Redis, numbers: dict[str, str]
) -> None:
    stack.compose("stop", "worker", timeout=120)
    assert stack.containers("worker") == []
    resources = [f"queued-{uuid.uuid4().hex[:6]}-{i}" for i in range(50)]
    for r in resources:
        _post(stack, r)
    assert queue_length(broker, QUEUE) == len(resources)

    started = time.monotonic()
    stack.compose("restart", "redis", timeout=120)
    redis_container = stack.containers("redis")[0]
    wait_until(lambda: stack.health(redis_container) == "healthy", timeout=60, interval=0.2, what="redis healthy")
    assert broker.info("persistence")["aof_enabled"] == 1
    assert queue_length(broker, QUEUE) == len(resources)
    assert _done_count(store, resources) == 0

    stack.compose("start", "worker", timeout=120)
    wait_until(
        lambda: _done_count(store, resources) == len(resources), timeout=120, interval=0.2, what="queued handled"
    )
    numbers["redis restart: 50 queued events handled"] = f"{time.monotonic() - started:.1f} s after the restart began"
    _wait_quiet(broker)
    done = [d["resource"] for d in _records(store, "done") if d["resource"] in set(resources)]
    assert sorted(done) == sorted(resources)


def _post(stack: Stack, resource: str, **extra: Any) -> None:
    response = post_signed(stack.ingress_url, webhook_payload(resource, **extra), stack.secrets.webhook)
    assert response.status_code == 202, response.text


def _all_healthy(stack: Stack, expected: int) -> bool:
    containers = stack.containers(running_only=False)
    states = {c: stack.inspect(c)["State"] for c in containers}
    for container, state in states.items():
        if state["Status"] in {"exited", "dead"}:
            logs = stack.docker("logs", "--tail", "60", container, check=False)
            raise AssertionError(f"container {container[:12]} exited {state['ExitCode']}:\n{logs.stdout}{logs.stderr}")
    healthy = [c for c, s in states.items() if s.get("Health", {}).get("Status") == "healthy"]
    return len(containers) == expected and len(healthy) == expected


def _transitions(stack: Stack, resource: str, seen: str = "") -> collections.Counter[str]:
    """The workers' one log line per transition (started, done, retrying, skipped...) for one event;
    empty until `seen` is among them, when given."""
    logs = stack.compose("logs", "--no-color", "worker", timeout=120).stdout
    pattern = re.compile(rf"frameio_kit\.worker: ([a-z-]+) file\.ready resource={re.escape(resource)}\b")
    found = collections.Counter(m.group(1) for m in pattern.finditer(logs))
    return found if not seen or found[seen] else collections.Counter()


def _records(store: redis.Redis, kind: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in store.lrange(f"test:{kind}", 0, -1)]


def _records_for(store: redis.Redis, kind: str, resource: str) -> list[dict[str, Any]]:
    return [r for r in _records(store, kind) if r["resource"] == resource]


def _done_count(store: redis.Redis, resources: list[str]) -> int:
    wanted = set(resources)
    return len({d["resource"] for d in _records(store, "done") if d["resource"] in wanted})


def _started_on(store: redis.Redis, resource: str) -> str:
    starts = wait_until(lambda: _records_for(store, "started", resource), timeout=30, interval=0.05, what="started")
    return str(starts[0]["host"])


def _worker_hosts(stack: Stack) -> set[str]:
    return {stack.hostname(c) for c in stack.containers("worker")}


def _container_of(stack: Stack, host: str) -> str:
    (container,) = [c for c in stack.containers("worker") if stack.hostname(c) == host]
    return container


def _stop_grace(stack: Stack) -> int:
    worker = yaml.safe_load((stack.dir / "docker-compose.yml").read_text())["services"]["worker"]
    return int(str(worker["stop_grace_period"]).rstrip("s"))


def _wait_quiet(broker: redis.Redis, timeout: float = 60) -> None:
    """Nothing queued and nothing unacknowledged (kombu's `unacked` hash): no copy left that could run again."""
    quiet: Callable[[], bool] = lambda: queue_length(broker, QUEUE) == 0 and broker.hlen("unacked") == 0  # noqa: E731
    wait_until(quiet, timeout=timeout, interval=0.2, what="the queue and unacked set empty")
