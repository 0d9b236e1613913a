"""Containers started from an unedited .env.example exit 2 with one line naming the variable, and
compose stops retrying them (issue 25, item 7; FRAMEIO_KIT_SESSION_SECRET: item 6)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from frameio_kit.placeholder_secrets import refuse_placeholder_secrets
from shared.errors import ConfigurationError
from shared.settings import Settings
from tests.helpers import ROOT

FRAMEIO_KIT = Path(sys.executable).parent / "frameio-kit"
GOOD_KEY = "k" * 40


def env_example() -> dict[str, str]:
    """The uncommented assignments of .env.example, as `env_file:` hands them to a container."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.M))


def placeholder_variables() -> list[str]:
    return sorted(name for name, value in env_example().items() if "change-me" in value)


def run_cli(command: str, values: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEIO_KIT_") and not k.endswith("_SECRET")}
    # Nothing listens on port 1: a start-up that got as far as Redis would fail differently.
    env.update({"PYTHONPATH": str(ROOT), "REDIS_URL": "redis://127.0.0.1:1/0", **values})
    return subprocess.run(
        [str(FRAMEIO_KIT), command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_env_example_fills_the_signing_secrets_with_placeholders():
    assert {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_KIT_JOB_SIGNING_KEYS"} <= set(placeholder_variables())


@pytest.mark.parametrize("command", ["ingress", "worker"])
def test_ingress_and_worker_started_with_env_example_exit_2_naming_a_variable(command, tmp_path):
    done = run_cli(command, env_example(), tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert any(name in lines[0] for name in placeholder_variables()), lines[0]


@pytest.mark.parametrize("variable", ["WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_KIT_JOB_SIGNING_KEYS"])
def test_the_ingress_refuses_each_placeholder_secret_on_its_own(variable, tmp_path):
    values = {
        **env_example(),
        "WEBHOOK_SECRET": "w" * 40,
        "CUSTOM_ACTION_SECRET": "a" * 40,
        "FRAMEIO_KIT_JOB_SIGNING_KEYS": GOOD_KEY,
        variable: "change-me",
    }
    done = run_cli("ingress", values, tmp_path)
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_placeholder_among_several_job_signing_keys_is_refused_by_the_worker(tmp_path):
    done = run_cli("worker", {**env_example(), "FRAMEIO_KIT_JOB_SIGNING_KEYS": f"{GOOD_KEY},change-me"}, tmp_path)
    assert done.returncode == 2 and "FRAMEIO_KIT_JOB_SIGNING_KEYS" in done.stderr, done.stderr
    assert "placeholder" in done.stderr


@pytest.mark.parametrize("secret", ["change-me", "too-short-session-secret"])
@pytest.mark.parametrize("command", ["ingress", "worker"])
def test_a_placeholder_or_short_session_secret_exits_2_naming_it(command, secret, tmp_path):
    values = {
        **env_example(),
        "WEBHOOK_SECRET": "w" * 40,
        "CUSTOM_ACTION_SECRET": "a" * 40,
        "FRAMEIO_KIT_JOB_SIGNING_KEYS": GOOD_KEY,
        "FRAMEIO_KIT_SESSION_SECRET": secret,
    }
    done = run_cli(command, values, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "FRAMEIO_KIT_SESSION_SECRET" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_long_random_session_secret_and_signing_key_are_accepted():
    settings = Settings.model_validate(
        {"FRAMEIO_KIT_SESSION_SECRET": "s" * 32, "FRAMEIO_KIT_JOB_SIGNING_KEYS": GOOD_KEY}
    )
    refuse_placeholder_secrets(settings)
    with pytest.raises(ConfigurationError, match="FRAMEIO_KIT_SESSION_SECRET"):
        refuse_placeholder_secrets(Settings.model_validate({"FRAMEIO_KIT_SESSION_SECRET": "s" * 31}))


def test_compose_gives_up_on_a_service_that_keeps_failing_at_start_up():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("ingress", "worker", "flower"):
        policy = str(services[name]["restart"])
        match = re.fullmatch(r"on-failure:(\d+)", policy)
        assert match and 1 <= int(match.group(1)) <= 3, f"{name}: restart: {policy}"


def test_the_readme_says_where_a_refused_container_left_its_reason():
    readme = (ROOT / "README.md").read_text()
    assert "docker-compose logs ingress" in readme and "on-failure:3" in readme
