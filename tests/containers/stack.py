"""The compose stack as tests/test_containers.py drives it: a scratch copy of the checkout with a
generated .env, `docker-compose` under a project name of its own, and the containers' state."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.helpers import ROOT, free_port

OVERRIDE = Path("tests/containers/compose.test.yml")
STAND_INS = ROOT / "tests/containers/stand_in_images.sh"
COMPOSE = "docker-compose"
# In CI a missing engine fails the run instead of skipping the tests (.ci/run sets it).
REQUIRED = os.environ.get("FRAMEIO_KIT_REQUIRE_CONTAINERS") == "1"
# What the container tests measured (build time, image size, ...), for the terminal summary.
NUMBERS = pytest.StashKey[dict[str, str]]()
_NOT_COPIED = (".git", ".venv", ".env", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "results")


def engine_problem() -> str | None:
    """Why the container tests cannot run on this machine, or None."""
    for tool in ("docker", COMPOSE):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (CI installs docker.io and docker-compose: see .ci/run)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    if info.returncode != 0:
        return f"no Docker engine answers `docker info`: {info.stderr.strip()[-300:]}"
    return None


@dataclass
class Secrets:
    """What the generated .env holds: real random values, never .env.example's placeholders."""

    webhook: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    action: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    job_signing: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    encryption: str = field(default_factory=lambda: Fernet.generate_key().decode())
    flower_user: str = "ops"
    flower_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def flower_auth(self) -> tuple[str, str]:
        return (self.flower_user, self.flower_password)


def scratch_checkout(dest: Path) -> Path:
    """The checkout's files without VCS, venv, caches or a developer's own .env, which the test must not touch."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
    return dest


def write_env(project_dir: Path, values: Secrets, settings: dict[str, str]) -> None:
    """`cp .env.example .env`, then fill it in: the README's first step, done by a program."""
    wanted = {
        "WEBHOOK_SECRET": values.webhook,
        "CUSTOM_ACTION_SECRET": values.action,
        "FRAMEIO_KIT_JOB_SIGNING_KEYS": values.job_signing,
        "FRAMEIO_KIT_ENCRYPTION_KEYS": values.encryption,
        "FLOWER_BASIC_AUTH": ":".join(values.flower_auth),
        **settings,
    }
    lines = (project_dir / ".env.example").read_text().splitlines()
    for name, value in wanted.items():
        pattern = re.compile(rf"^#?\s*{name}=")
        for i, line in enumerate(lines):
            if pattern.match(line):
                lines[i] = f"{name}={value}"
                break
        else:
            lines.append(f"{name}={value}")
    (project_dir / ".env").write_text("\n".join(lines) + "\n")


class Stack:
    """One compose project: `docker-compose -p NAME -f docker-compose.yml -f <override>` in a scratch checkout."""

    def __init__(self, project_dir: Path, secrets: Secrets, log: Path) -> None:
        self.dir = project_dir
        self.secrets = secrets
        self.name = f"fkt{uuid.uuid4().hex[:10]}"
        self.image = f"frameio-kit:test-{self.name}"
        self.log = log
        self.redis_port, self.ingress_port, self.flower_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "TEST_IMAGE": self.image,
            "TEST_REDIS_PORT": str(self.redis_port),
            "INGRESS_HOST_PORT": str(self.ingress_port),
            "FLOWER_HOST_PORT": str(self.flower_port),
        }

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [COMPOSE, "-p", self.name, "-f", "docker-compose.yml", "-f", str(OVERRIDE), *args]
        return self._run(argv, timeout)

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(["docker", *args], timeout, check)

    def _run(self, argv: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            argv, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(argv)}  # {time.monotonic() - started:.1f}s, exit {done.returncode}\n")
            log.write(done.stdout + done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        return done

    def containers(self, service: str | None = None, running_only: bool = True) -> list[str]:
        """Container ids of this project (or one of its services), by compose's labels."""
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        listing = self.docker("ps", "-q", "--no-trunc", *([] if running_only else ["-a"]), *filters)
        return sorted(listing.stdout.split())

    def inspect(self, container: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.docker("inspect", container).stdout)
        return data[0]

    def health(self, container: str) -> str:
        state = self.inspect(container)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def hostname(self, container: str) -> str:
        return str(self.inspect(container)["Config"]["Hostname"])

    def network(self) -> str:
        """The project's compose network (the containers' only one)."""
        return str(
            self.docker(
                "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}"
            ).stdout.split()[0]
        )
