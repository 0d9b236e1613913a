"""An integration that brings its own logging, as integrations do: at import it puts a handler on
its logger with a format of caller line and thread (TEST_USER_LOG names the file). Each line says
which thread the code saw, so a test can check the format's fields against the truth."""

from __future__ import annotations

import logging
import os
import threading

from frameio_kit import ActionEvent, App, Message, WebhookEvent

USER_FORMAT = "%(lineno)d %(threadName)s %(message)s"

log = logging.getLogger("tests.user_logging")
log.setLevel(logging.INFO)
_handler = logging.FileHandler(os.environ["TEST_USER_LOG"], encoding="utf-8")
_handler.setFormatter(logging.Formatter(USER_FORMAT))
log.addHandler(_handler)

app = App()


def _thread() -> str:
    return threading.current_thread().name


log.info("module-level thread=%s", _thread())


@app.on_webhook("file.ready")
async def on_file_ready(event: WebhookEvent) -> None:
    log.info("webhook-handler thread=%s", _thread())


@app.on_action("tests.userlog", name="User log", description="Logs through the integration's own handler")
async def on_action(event: ActionEvent) -> Message:
    log.info("action-handler thread=%s", _thread())
    return Message(title="Logged", description="done")
