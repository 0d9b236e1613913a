"""A user's package named like one of ours (`shared`, `ingress`, `workers`) is refused at start-up, by name and path.

The processes run from a temporary project folder, as a user runs them, without PYTHONPATH.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest
import redis

from shared.app.collisions import find_collisions
from tests.helpers import (
    ROOT,
    WEBHOOK_SECRET,
    Service,
    cli_command,
    free_port,
    post_signed,
    wait_until,
    webhook_payload,
)

MYAPP = """
import os

import redis.asyncio as aioredis

from frameio_kit import App, WebhookEvent
from {package}.util import shout

app = App()
_record = aioredis.from_url(os.environ["TEST_RECORD_URL"])


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    await _record.rpush("test:shouted", shout(event.resource_id))
"""

FRAMEIO_KIT = Path(sys.executable).parent / "frameio-kit"
"""The console script users run (`pip install` puts it next to the interpreter)."""

LAUNCHERS: dict[str, Callable[..., list[str]]] = {
    "frameio-kit": lambda *args: [str(FRAMEIO_KIT), *args],
    "python -m frameio_kit.cli": cli_command,
}


def make_project(folder: Path, package: str) -> Path:
    """`myapp.py` next to the user's own package `package` (`__init__.py`, `util.py`), which myapp imports."""
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / "util.py").write_text("def shout(text: str) -> str:\n    return text.upper()\n")
    (folder / "myapp.py").write_text(MYAPP.format(package=package))
    return folder


@pytest.fixture
def user_env(base_env: dict[str, str]) -> dict[str, str]:
    """The suite's environment without PYTHONPATH: the installed package, as a user has it."""
    return {k: v for k, v in base_env.items() if k != "PYTHONPATH"} | {"WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("command", ["worker", "ingress"])
def test_a_user_package_named_shared_stops_the_command_with_exit_2(
    tmp_path: Path, user_env: dict[str, str], command: str, launcher: str
) -> None:
    project = make_project(tmp_path / "project", "shared")
    argv = LAUNCHERS[launcher](command, "myapp:app", *(["--port", str(free_port())] if command == "ingress" else []))

    done = subprocess.run(argv, cwd=project, env=user_env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2, done.stderr
    assert "package name collision" in done.stderr
    assert "`shared`" in done.stderr
    assert str((project / "shared").resolve()) in done.stderr
    assert str(ROOT / "shared") in done.stderr
    assert "myapp_shared" in done.stderr
    assert "Traceback" not in done.stderr


def test_plain_uvicorn_names_the_collision_not_a_missing_module(tmp_path: Path, user_env: dict[str, str]) -> None:
    project = make_project(tmp_path / "project", "shared")
    argv = [sys.executable, "-m", "uvicorn", "myapp:app", "--port", str(free_port())]

    done = subprocess.run(argv, cwd=project, env=user_env, capture_output=True, text=True, timeout=60)

    assert done.returncode != 0
    assert "package name collision" in done.stderr
    assert str((project / "shared").resolve()) in done.stderr


@pytest.mark.e2e
def test_the_same_project_with_the_package_renamed_runs_a_webhook(
    tmp_path: Path, user_env: dict[str, str], redis_client: redis.Redis, redis_server: object
) -> None:
    project = make_project(tmp_path / "project", "myapp_shared")
    port = free_port()
    ingress = Service(
        "ingress", [str(FRAMEIO_KIT), "ingress", "myapp:app", "--port", str(port)], user_env, tmp_path, cwd=project
    )
    worker = Service("worker", [str(FRAMEIO_KIT), "worker", "myapp:app", "-c", "2"], user_env, tmp_path, cwd=project)
    try:
        url = f"http://127.0.0.1:{port}"
        ingress.wait_for_http(url + "/healthz", timeout=60)
        worker.wait_for_output(r" ready\.", timeout=60)

        assert post_signed(url, webhook_payload("file-1"), WEBHOOK_SECRET).status_code == 202
        records = redis.Redis.from_url(user_env["TEST_RECORD_URL"])
        shouted = wait_until(lambda: records.lrange("test:shouted", 0, -1), timeout=30, what="the handler to run")
        records.close()
        assert shouted == [b"FILE-1"]
    finally:
        worker.stop()
        ingress.stop()


def test_our_own_checkout_is_not_a_collision() -> None:
    """Running from the repository (an editable install) imports our own packages: nothing to refuse."""
    assert find_collisions([str(ROOT), ""], modules={}) == []
    assert find_collisions() == []


def test_a_module_file_and_a_namespace_folder_collide_too(tmp_path: Path) -> None:
    (tmp_path / "workers.py").write_text("")
    (tmp_path / "ingress").mkdir()
    (tmp_path / "ingress" / "routes.py").write_text("")

    found = {(c.name, c.found) for c in find_collisions([str(tmp_path)], modules={})}

    assert found == {("workers", (tmp_path / "workers.py").resolve()), ("ingress", (tmp_path / "ingress").resolve())}


def test_a_folder_of_non_python_files_is_not_a_collision(tmp_path: Path) -> None:
    """A namespace folder without Python (say deployment files under `workers/`) imports nothing."""
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / "deploy.yaml").write_text("replicas: 2\n")

    assert find_collisions([str(tmp_path)], modules={}) == []


def test_a_foreign_package_already_imported_collides(tmp_path: Path) -> None:
    """`import shared.util` before frameio_kit: the user's package is in sys.modules, on the path or not."""
    project = make_project(tmp_path, "shared")
    spec = spec_from_file_location("shared", project / "shared" / "__init__.py")
    assert spec is not None
    theirs = module_from_spec(spec)

    found = find_collisions([], modules={"shared": theirs})

    assert [(c.name, c.found) for c in found] == [("shared", (project / "shared").resolve())]


def test_flower_refuses_a_user_package_named_workers(tmp_path: Path, user_env: dict[str, str]) -> None:
    """Flower imports no integration, but its `python -m celery -A workers` would import the user's `workers`."""
    project = make_project(tmp_path / "project", "workers")
    env = user_env | {"FLOWER_BASIC_AUTH": "admin:a-real-password"}

    done = subprocess.run(
        [str(FRAMEIO_KIT), "flower"], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2, done.stderr
    assert "`workers`" in done.stderr
    assert str((project / "workers").resolve()) in done.stderr
    assert "Traceback" not in done.stderr
