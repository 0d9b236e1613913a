"""Log output of long-running processes: buffered INFO lines still arrive, warnings at once, and a
subprocess's lines are all there when it exits."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from frameio_kit.testing import wait_until
from shared.logs import BufferedStreamHandler, TextFormatter, configure_logging
from shared.settings import Settings
from tests.helpers import ROOT


@pytest.fixture
def buffered(tmp_path: Path) -> Iterator[tuple[logging.Logger, Path]]:
    path = tmp_path / "log.txt"
    stream = path.open("w", buffering=1 << 16, encoding="utf-8")
    handler = BufferedStreamHandler(stream, interval=0.1)
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger(f"test_logs.{tmp_path.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, path
    logger.removeHandler(handler)
    stream.close()


def test_buffered_info_lines_reach_the_log_within_the_interval(buffered: tuple[logging.Logger, Path]) -> None:
    logger, path = buffered
    for i in range(3):
        logger.info("file.ready enqueued %d", i)
    wait_until(lambda: path.read_text().count("enqueued") == 3, timeout=5, what="buffered lines flushed")
    lines = path.read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [f"file.ready enqueued {i}" for i in range(3)]
    assert all(" INFO    test_logs." in line for line in lines)


def test_a_warning_is_written_at_once_after_the_lines_before_it(buffered: tuple[logging.Logger, Path]) -> None:
    logger, path = buffered
    handler = logger.handlers[0]
    assert isinstance(handler, BufferedStreamHandler)
    handler.interval = 3600.0  # the periodic flush must play no part here
    logger.info("before")
    logger.warning("enqueue failed, retrying")
    text = path.read_text()
    assert text.index("before") < text.index("WARNING test_logs.")


def test_text_format_matches_the_stock_formatter() -> None:
    record = logging.LogRecord("frameio_kit.ingress", logging.INFO, "", 0, "%s %s", ("file.ready", "enqueued"), None)
    stock = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    assert TextFormatter().format(record) == stock.format(record)


def test_flush_interval_zero_writes_every_line_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEIO_KIT_LOG_FLUSH_INTERVAL", "0")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings(), buffered=True)
        assert type(root.handlers[0]) is logging.StreamHandler
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_a_process_that_exits_leaves_every_buffered_line(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "from shared.logs import configure_logging\n"
        "from shared.settings import Settings\n"
        "configure_logging(Settings(), buffered=True)\n"
        "log = logging.getLogger('frameio_kit.ingress')\n"
        "for i in range(500):\n"
        "    log.info('file.ready enqueued %d', i)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "FRAMEIO_KIT_LOG_FLUSH_INTERVAL": "10"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 500
    assert lines[-1].endswith("file.ready enqueued 499")


def test_a_users_format_gets_caller_line_and_thread_through_the_buffered_handler(tmp_path: Path) -> None:
    script = (
        "import logging, threading\n"
        "from shared.logs import BufferedStreamHandler, configure_logging\n"
        "from shared.settings import Settings\n"
        "configure_logging(Settings(), buffered=True)\n"
        "handler = logging.getLogger().handlers[0]\n"
        "assert isinstance(handler, BufferedStreamHandler)\n"
        "handler.setFormatter(logging.Formatter('%(lineno)d %(threadName)s %(processName)s %(message)s'))\n"
        "work = lambda: logging.getLogger('mine').info('from a thread')\n"
        "thread = threading.Thread(target=work, name='user-thread')\n"
        "thread.start()\n"
        "thread.join()\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "FRAMEIO_KIT_LOG_FLUSH_INTERVAL": "10"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.splitlines() == ["8 user-thread MainProcess from a thread"]


_DIRECT_PATH_SCRIPT = """
import io, logging, sys
from shared import logs
from shared.settings import Settings
settings = Settings(FRAMEIO_KIT_JOB_SIGNING_KEYS="k" * 40, FRAMEIO_KIT_LOG_FLUSH_INTERVAL=10)
logs.configure_logging(settings, buffered=True)
logs.protect_kit_loggers()
stream = io.StringIO()
logs._direct.setStream(stream)
kit = logging.getLogger("frameio_kit.ingress")
logs.log_info(kit, "%s %s %.1fms", "file.ready\\nforged", "enqueued", 1.25)
kit.info("%s %s %.1fms", "file.ready\\nforged", "enqueued", 1.25)
user = logging.Handler()
seen = []
user.emit = lambda record: seen.append((record.lineno, record.threadName))
logging.getLogger().addHandler(user)
logs.log_info(kit, "%s %s", "via", "record")
direct, stock, _ = stream.getvalue().split("\\n", 2)
print(direct.split(" ", 2)[2])
print(stock.split(" ", 2)[2])
print(seen[0][0] > 0, seen[0][1])
"""


def test_the_direct_info_path_writes_the_records_line_and_yields_to_a_users_handler() -> None:
    """`log_info` skips the LogRecord only while the kit's handler is the only one; its line is the
    record path's line, escaping included."""
    out = subprocess.run(
        [sys.executable, "-c", _DIRECT_PATH_SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT, timeout=60
    ).stdout.splitlines()
    assert out[0] == out[1] == "INFO    frameio_kit.ingress: file.ready\\nforged enqueued 1.2ms"
    assert out[2] == "True MainThread"
