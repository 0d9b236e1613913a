"""Security issue 11: the de-duplication window covers the replay span, in-memory action state stays
in one process, and /metrics is not served to the network without a token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from frameio_kit import App, WebhookEvent
from ingress.app import create_app
from ingress.metrics import is_loopback
from shared.settings import MIN_DEDUP_WINDOW, Settings
from tests.helpers import ROOT, RedisServer, cli_command, wait_until

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - these tests are about an ingress bound beyond loopback
METRICS_REFUSED = "metrics are served beyond loopback only with FRAMEIO_KIT_METRICS_TOKEN set"


def ingress_log(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.glob("ingress-*.log"))


def run_cli(base_env: dict[str, str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**base_env, "WEBHOOK_SECRET": "s", "CUSTOM_ACTION_SECRET": "s", **env}
    return subprocess.run(cli_command(*args), env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("window", [1, 300, MIN_DEDUP_WINDOW - 1])
def test_dedup_window_shorter_than_the_replay_span_is_refused(monkeypatch: pytest.MonkeyPatch, window: int):
    monkeypatch.setenv("FRAMEIO_KIT_DEDUP_WINDOW", str(window))
    with pytest.raises(ValidationError, match="FRAMEIO_KIT_DEDUP_WINDOW"):
        Settings()


@pytest.mark.parametrize("window", [0, MIN_DEDUP_WINDOW, 86400])
def test_dedup_window_of_zero_or_the_full_span_is_accepted(window: int):
    assert Settings(dedup_window=window).dedup_window == window


def test_ingress_with_a_short_dedup_window_exits_2(base_env: dict[str, str]):
    result = run_cli(base_env, "ingress", "tests.apps.basic:app", FRAMEIO_KIT_DEDUP_WINDOW="300")
    assert result.returncode == 2
    assert "FRAMEIO_KIT_DEDUP_WINDOW=300 is shorter than the 600 s" in result.stderr


def test_dedup_window_of_zero_starts_with_a_replay_warning(start_ingress, tmp_path: Path):
    start_ingress(extra_env={"FRAMEIO_KIT_DEDUP_WINDOW": "0"})
    wait_until(lambda: "de-duplication is off" in ingress_log(tmp_path), what="the replay warning")
    assert "WARNING" in ingress_log(tmp_path)


def test_more_than_one_ingress_process_with_memory_action_state_exits_2(base_env: dict[str, str]):
    result = run_cli(base_env, "ingress", "tests.apps.basic:app", "--workers", "2")
    assert result.returncode == 2
    assert "--workers 2 with FRAMEIO_KIT_ACTION_STATE=memory" in result.stderr
    assert "FRAMEIO_KIT_ACTION_STATE=redis" in result.stderr


def test_metrics_beyond_loopback_need_the_token(start_ingress, tmp_path: Path):
    url = start_ingress(args=("--host", ALL_INTERFACES))
    response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 403
    assert response.json() == {"error": METRICS_REFUSED}
    assert "without FRAMEIO_KIT_METRICS_TOKEN" in ingress_log(tmp_path)


def test_metrics_beyond_loopback_with_the_token_are_served_to_its_bearer(start_ingress):
    url = start_ingress(args=("--host", ALL_INTERFACES), extra_env={"FRAMEIO_KIT_METRICS_TOKEN": "scrape-me"})
    assert httpx.get(url + "/metrics", timeout=5).status_code == 401
    served = httpx.get(url + "/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=5)
    assert served.status_code == 200
    assert "frameio_kit_ingress_requests" in served.text


def test_metrics_on_loopback_need_no_token(start_ingress):
    assert httpx.get(start_ingress() + "/metrics", timeout=5).status_code == 200


def test_metrics_are_refused_on_a_connection_that_did_not_arrive_on_loopback(redis_server: RedisServer):
    app = App()

    @app.on_webhook("file.ready", secret="s")
    async def on_file(event: WebhookEvent) -> None:
        return None

    settings = Settings(redis_url=redis_server.url, host="127.0.0.1")
    with TestClient(create_app(app, settings)) as client:  # its connections arrive on "testserver"
        response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json() == {"error": METRICS_REFUSED}


def test_blank_metrics_token_counts_as_unset():
    assert Settings(metrics_token="  ").metrics_token is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (None, True),
        (ALL_INTERFACES, False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_what_counts_as_loopback(host: str | None, loopback: bool):
    assert is_loopback(host) is loopback
