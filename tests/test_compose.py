"""docker-compose.yml, run without Docker: each service's command exactly as written, against a real redis-server.
(tests/test_containers.py runs the same file with Docker, where an engine is available.)

What containers provide and a shared test machine does not (a network namespace each, the compose
network's "redis" host) is supplied through environment overrides: a private Redis, 127.0.0.1 and
free ports. The commands themselves are never changed.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.settings import Settings
from tests.helpers import ROOT, WEBHOOK_SECRET, Service, free_port, post_signed, wait_until, webhook_payload

pytestmark = pytest.mark.e2e

COMPOSE = ROOT / "docker-compose.yml"
FLOWER_AUTH = ("ops", "flower-test-pw")
_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as `docker compose` resolves them from .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if op == "?":
            raise AssertionError(f"compose would refuse to start: {arg}")
        return arg if op == "-" else ""

    return _VAR.sub(one, value)


def service_env(service: dict[str, Any], dot_env: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """The service's environment: the .env file, then its `environment:` block, then test overrides."""
    env = {**dot_env}
    env.update({k: interpolate(str(v), dot_env) for k, v in (service.get("environment") or {}).items()})
    env.update(overrides)
    return env


def test_compose_file_describes_a_scalable_durable_authenticated_stack():
    services = load_compose()["services"]
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    assert {"ingress", "worker", "flower"} <= services.keys()
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # required by --scale worker=N
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    grace = float(worker["environment"]["FRAMEIO_KIT_SHUTDOWN_GRACE"])
    assert int(worker["stop_grace_period"].rstrip("s")) > grace
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    # Flower on the host's loopback only, behind `frameio-kit flower`'s refusal of example passwords.
    assert [interpolate(p, {}) for p in services["flower"]["ports"]] == ["127.0.0.1:5555:5555"]
    assert services["flower"]["command"] == ["frameio-kit", "flower"]
    assert [interpolate(p, {}) for p in services["ingress"]["ports"]] == ["8000:8000"]
    with pytest.raises(AssertionError, match="FLOWER_BASIC_AUTH"):
        interpolate(services["flower"]["environment"]["FLOWER_BASIC_AUTH"], {})


def test_env_example_lists_every_setting():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(str(choice) for choice in getattr(alias, "choices", [alias]) if choice)
    assert names - listed == set()


def test_compose_services_run_as_written(redis_server, redis_client, records, base_env, tmp_path):
    services = load_compose()["services"]
    dot_env = {
        **base_env,
        "PATH": f"{Path(sys.executable).parent}:{base_env.get('PATH', '')}",
        "FRAMEIO_APP": "tests.apps.basic:app",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CUSTOM_ACTION_SECRET": "compose-action-secret",
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
    }
    # What each container would have to itself: the broker, its own loopback, its own ports.
    shared = {"REDIS_URL": redis_server.url, "FRAMEIO_KIT_HOST": "127.0.0.1"}
    ingress_port, flower_port = free_port(), free_port()
    started: list[Service] = []
    try:
        flower_env = service_env(
            services["flower"], dot_env, {**shared, "FLOWER_PORT": str(flower_port), "FLOWER_ADDRESS": "127.0.0.1"}
        )
        flower = Service("flower", services["flower"]["command"], flower_env, tmp_path)
        started.append(flower)
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_until(lambda: _answers(flower_url + "/healthcheck", flower), timeout=60, what="flower")

        ingress_env = service_env(services["ingress"], dot_env, {**shared, "FRAMEIO_KIT_PORT": str(ingress_port)})
        ingress = Service("ingress", services["ingress"]["command"], ingress_env, tmp_path)
        started.append(ingress)
        url = f"http://127.0.0.1:{ingress_port}"
        wait_until(lambda: _answers(url + "/healthz", ingress), timeout=60, what="ingress")

        workers, worker_envs = [], []
        for _ in range(3):
            env = service_env(
                services["worker"], dot_env, {**shared, "FRAMEIO_KIT_WORKER_METRICS_PORT": str(free_port())}
            )
            worker_envs.append(env)
            worker = Service("worker", services["worker"]["command"], env, tmp_path)
            started.append(worker)
            workers.append(worker)
        for worker in workers:
            worker.wait_for_output(r" ready\.", timeout=60)

        for name, env in (("ingress", ingress_env), ("worker", worker_envs[0]), ("flower", flower_env)):
            check = _healthcheck_argv(services[name]["healthcheck"]["test"], flower_port)
            assert subprocess.run(check, env=env, cwd=ROOT, timeout=30).returncode == 0, name

        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(
                pool.map(lambda i: post_signed(url, webhook_payload(f"compose-{i}"), WEBHOOK_SECRET), range(300))
            )
        assert collections.Counter(r.status_code for r in responses) == {202: 300}

        def all_done() -> list[dict[str, Any]]:
            done = records("done")
            return done if len({d["resource"] for d in done}) >= 300 else []

        done = wait_until(all_done, timeout=120, interval=0.5, what="300 webhooks handled")
        assert {d["resource"] for d in done} == {f"compose-{i}" for i in range(300)}
        per_worker = collections.Counter(d["pid"] for d in done)
        assert set(per_worker) == {w.pid for w in workers}, per_worker
        assert all(count > 0 for count in per_worker.values())

        assert httpx.get(flower_url + "/api/workers", timeout=10).status_code == 401
        names = wait_until(lambda: _flower_workers(flower_url), timeout=60, interval=1, what="flower's workers")
        assert len(names) == 3 and all(n.startswith("frameio-kit-") for n in names)
        tasks = wait_until(lambda: _flower_tasks(flower_url, 300), timeout=60, interval=1, what="flower's tasks")
        assert {t["name"] for t in tasks} == {"frameio_kit.handle_webhook"}
        assert all("'event_type': 'file.ready'" in t["kwargs"] for t in tasks)
        assert {t["worker"] for t in tasks} == set(names)
        assert collections.Counter(t["state"] for t in tasks)["SUCCESS"] == 300
    finally:
        for svc in reversed(started):
            svc.stop()


def _answers(url: str, svc: Service) -> bool:
    if svc.proc.poll() is not None:
        raise AssertionError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.output()[-3000:]}")
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _healthcheck_argv(test: list[str], flower_port: int) -> list[str]:
    assert test[0] == "CMD"
    # Flower's port is the one thing a container has that this machine cannot give every test.
    return [arg.replace(":5555/", f":{flower_port}/") for arg in test[1:]]


def _flower_workers(base: str) -> list[str]:
    response = httpx.get(base + "/api/workers", params={"refresh": "1"}, auth=FLOWER_AUTH, timeout=10)
    names = sorted(response.json()) if response.status_code == 200 else []
    return names if len(names) >= 3 else []


def _flower_tasks(base: str, expected: int) -> list[dict[str, Any]]:
    response = httpx.get(base + "/api/tasks", params={"limit": "1000"}, auth=FLOWER_AUTH, timeout=10)
    tasks = list(response.json().values()) if response.status_code == 200 else []
    done = [t for t in tasks if t.get("state") == "SUCCESS"]
    return tasks if len(done) >= expected else []
