"""An integration's own log handler and format work in the real ingress and worker processes: the
kit changes none of `logging`'s globals, so `%(lineno)d` and `%(threadName)s` carry real values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from frameio_kit.testing import Service
from tests.helpers import ACTION_SECRET, ROOT, WEBHOOK_SECRET, action_payload, post_signed, wait_until, webhook_payload

pytestmark = pytest.mark.e2e

APP = "tests.apps.user_logging:app"
APP_SOURCE = ROOT / "tests" / "apps" / "user_logging.py"  # not imported here: it opens its log file at import
# The processes log as in production: through the kit's buffered root handler.
BUFFERED = {"FRAMEIO_KIT_LOG_FLUSH_INTERVAL": "0.2"}


def source_line(tag: str) -> int:
    """The line of the app's `log.info("<tag> ...")` call."""
    lines = APP_SOURCE.read_text(encoding="utf-8").splitlines()
    found = [number for number, text in enumerate(lines, start=1) if f'log.info("{tag} ' in text]
    assert len(found) == 1, tag
    return found[0]


def user_lines(path: Path) -> dict[str, tuple[int, str, str]]:
    """The user's format, `lineno threadName message`, by the message's first word."""
    parsed: dict[str, tuple[int, str, str]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            lineno, thread, message = line.split(" ", 2)
            parsed[message.split(" ", 1)[0]] = (int(lineno), thread, message)
    return parsed


def assert_real_fields(lines: dict[str, tuple[int, str, str]], tag: str) -> str:
    lineno, thread, message = lines[tag]
    assert lineno == source_line(tag)
    assert f"thread={thread}" in message.split()  # the name the code itself saw, not "None"
    return thread


def test_users_own_format_shows_caller_line_and_thread_in_ingress_and_worker(
    start_ingress: Callable[..., str], start_worker: Callable[..., Service], tmp_path: Path
) -> None:
    ingress_log = tmp_path / "user-ingress.log"
    worker_log = tmp_path / "user-worker.log"
    url = start_ingress(APP, extra_env={**BUFFERED, "TEST_USER_LOG": str(ingress_log)})
    worker = start_worker(APP, extra_env={**BUFFERED, "TEST_USER_LOG": str(worker_log)})

    answer = post_signed(url, action_payload("userlog-1", event_type="tests.userlog"), ACTION_SECRET)
    assert answer.status_code == 200
    assert post_signed(url, webhook_payload("userlog-file"), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: "webhook-handler" in user_lines(worker_log), timeout=30, what="the handler's own log line")

    ingress = user_lines(ingress_log)
    assert_real_fields(ingress, "module-level")
    assert_real_fields(ingress, "action-handler")
    worker_lines = user_lines(worker_log)
    assert_real_fields(worker_lines, "module-level")
    # Handlers run on the worker's event-loop thread, not the thread that imported the module.
    assert assert_real_fields(worker_lines, "webhook-handler") == "frameio-kit-loop"

    # The kit's own lines still come out, in its own format, through its buffered handler.
    wait_until(lambda: "frameio_kit.worker: done " in worker.output(), timeout=10, what="the worker's done line")
    (ingress_output,) = tmp_path.glob("ingress-*.log")
    wait_until(
        lambda: "frameio_kit.ingress: file.ready enqueued " in ingress_output.read_text(errors="replace"),
        timeout=10,
        what="the ingress's request line",
    )
