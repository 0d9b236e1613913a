"""The first hour with frameio-kit (issue 25, item 7): the real `frameio-kit` command says its version, what each
subcommand needs, fails in one clear line when Redis or the workers are missing, asks before purging, and says
when an event reached no handler; the README's production lines name every variable needed to start."""

from __future__ import annotations

import json
import re
import subprocess
import time
from importlib.metadata import version

import pytest
import redis

from shared.jobs.contract import WebhookJob
from shared.jobs.dead_letters import DeadLetterStore
from tests.helpers import ACTION_SECRET, ROOT, WEBHOOK_SECRET, cli_command, free_port, webhook_payload

COMMANDS = ["dev", "ingress", "worker", "dead-letters", "events", "handlers", "send", "healthcheck", "flower"]
# What each subcommand's --help must name: the things it cannot start without.
NEEDS = {
    "dev": ["redis-server", "FRAMEIO_APP"],
    "ingress": ["REDIS_URL", "FRAMEIO_KIT_JOB_SIGNING_KEYS", "WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_APP"],
    "worker": ["REDIS_URL", "FRAMEIO_KIT_JOB_SIGNING_KEYS", "FRAMEIO_APP"],
    "dead-letters": ["REDIS_URL", "FRAMEIO_KIT_JOB_SIGNING_KEYS"],
    "events": ["REDIS_URL", "FRAMEIO_KIT_BROKER_URL", "FRAMEIO_KIT_JOB_SIGNING_KEYS"],
    "handlers": ["REDIS_URL", "FRAMEIO_KIT_BROKER_URL"],
    "send": ["WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET"],
    "healthcheck": ["REDIS_URL", "FRAMEIO_KIT_PORT"],
    "flower": ["FLOWER_BASIC_AUTH"],
}


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        env=env,
        cwd=ROOT,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def redis_down_env(base_env: dict[str, str]) -> dict[str, str]:
    """REDIS_URL on a port nothing listens on."""
    return {**base_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


def test_version_prints_the_installed_distribution_version():
    result = cli("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"frameio-kit {version('frameio-kit')}"


def test_help_lists_dev_first_then_every_command():
    listed = cli("--help").stdout
    block = listed[listed.index("{") + 1 : listed.index("}")]

    assert block.split(",") == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_help_says_what_it_does_and_what_it_needs(command):
    result = cli(command, "--help")

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines, sometimes inside a sentence
    summary = cli("--help").stdout
    assert re.search(rf"^\s+{re.escape(command)}\s+\S", summary, re.MULTILINE), f"{command} has no summary"
    missing = [need for need in NEEDS[command] if need not in text]
    assert not missing, f"`frameio-kit {command} --help` does not mention {missing}:\n{result.stdout}"


def test_healthcheck_worker_fails_in_one_line_when_no_worker_answers_though_redis_does(base_env, redis_client):
    redis_client.ping()  # the broker is up: only a worker's answer may make the check pass

    started = time.monotonic()
    result = cli("healthcheck", "worker", env=base_env)

    line = _one_line_failure(result)
    assert result.returncode == 1
    assert "no worker" in line and "answered a ping" in line
    assert time.monotonic() - started < 15, "the ping has a short timeout"


def test_healthcheck_worker_fails_in_one_line_when_the_broker_is_down(redis_down_env):
    line = _one_line_failure(cli("healthcheck", "worker", env=redis_down_env))

    assert line.startswith("unhealthy:")


@pytest.mark.e2e
def test_healthcheck_worker_passes_once_a_worker_on_this_host_answers(base_env, redis_client, start_worker):
    start_worker()

    result = cli("healthcheck", "worker", env=base_env)

    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
def test_healthcheck_worker_counts_only_this_hosts_workers_unless_any_host(base_env, redis_client, start_worker):
    start_worker(argv=cli_command("worker", "tests.apps.basic:app", "--concurrency", "2", "-n", "w@elsewhere"))

    here = cli("healthcheck", "worker", env=base_env)
    anywhere = cli("healthcheck", "worker", "--any-host", env=base_env)

    assert "no worker on host" in _one_line_failure(here)
    assert anywhere.returncode == 0, anywhere.stderr


@pytest.mark.parametrize(
    "action", [["list"], ["show", "abc"], ["replay", "--all"], ["replay", "abc"], ["purge", "--yes"]]
)
def test_dead_letters_commands_print_one_line_not_a_traceback_when_redis_is_down(redis_down_env, action):
    line = _one_line_failure(cli("dead-letters", *action, env=redis_down_env))

    assert "Redis unavailable" in line


def _store_with_one_letter(client: redis.Redis) -> DeadLetterStore:
    store = DeadLetterStore(client, max_entries=100, retention=3600, completion_ttl=600)
    body = json.dumps(webhook_payload("purge-me")).encode()
    store.dead_letter(WebhookJob.for_delivery("file.ready", "purge-me", body, int(time.time())), "exhausted", "x")
    return store


@pytest.mark.parametrize("answer", [None, "", "n\n", "no\n", "whatever\n"])
def test_purge_without_yes_purges_nothing_unless_the_answer_is_yes(base_env, redis_client, answer):
    store = _store_with_one_letter(redis_client)

    result = cli("dead-letters", "purge", env=base_env, stdin=answer)

    assert result.returncode == 1
    assert "nothing purged" in result.stderr and "--yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert store.count() == 1


@pytest.mark.parametrize(("args", "answer"), [(["--yes"], None), ([], "y\n"), ([], "yes\n")])
def test_purge_deletes_everything_with_yes_or_a_yes_answer(base_env, redis_client, args, answer):
    store = _store_with_one_letter(redis_client)

    result = cli("dead-letters", "purge", *args, env=base_env, stdin=answer)

    assert result.returncode == 0, result.stderr
    assert "purged 1 dead letter(s)" in result.stdout
    assert store.count() == 0


@pytest.mark.e2e
def test_send_to_an_action_with_no_handler_says_so(base_env, start_ingress):
    url = start_ingress()

    result = cli("send", "nobody.handles_this", "--action", "--url", url, "--secret", ACTION_SECRET, env=base_env)

    assert result.returncode == 1
    assert "no handler for action 'nobody.handles_this'" in result.stderr
    assert "-> 200" in result.stdout


@pytest.mark.e2e
def test_send_to_a_handled_webhook_does_not_claim_there_is_no_handler(base_env, start_ingress):
    url = start_ingress()

    unhandled = cli("send", "asset.deleted", "--url", url, "--secret", WEBHOOK_SECRET, env=base_env)
    handled = cli("send", "file.ready", "--url", url, "--secret", WEBHOOK_SECRET, env=base_env)

    assert unhandled.returncode == 1 and "no handler for webhook 'asset.deleted'" in unhandled.stderr
    assert handled.returncode == 0, handled.stderr
    assert "no handler" not in handled.stderr and "-> 202" in handled.stdout


def test_dot_env_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", ".env"], cwd=ROOT, capture_output=True, check=False
    )

    assert result.returncode == 0, ".env (real secrets) must be in .gitignore"


def _production_block() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("Run it in production")
    return readme[start : readme.index("```\n", readme.index("```bash", start) + 7)]


def test_readme_production_lines_name_every_variable_needed_to_start_and_how_to_generate_it():
    block = _production_block()

    for variable in ["REDIS_URL", "WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET", "FRAMEIO_KIT_JOB_SIGNING_KEYS"]:
        assert re.search(rf"\b{variable}=", block), f"{variable} is not set in the README's production lines"
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in block
    assert "FRAMEIO_KIT_ENCRYPTION_KEYS" in block
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in block
