"""Logging set-up for entry points: human-readable by default, JSON with FRAMEIO_KIT_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import sys
import time

from shared import tracing
from shared.settings import Settings

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_TEXT_TRACED_FORMAT = _TEXT_FORMAT + " trace=%(trace_id)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as the text format."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TraceIdFilter(logging.Filter):
    """Adds the current trace id to each record (`trace_id`, "-" outside a trace), so a log line
    leads to its trace. Installed only when tracing is configured."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = tracing.trace_id() or "-"
        return True


def configure_logging(settings: Settings) -> None:
    # Our formats use neither thread, process nor caller: skip collecting them per record (the
    # logging HOWTO's "Optimization" table names these switches, `_srcfile` included).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_TRACED_FORMAT if settings.tracing_enabled else _TEXT_FORMAT))
    if settings.tracing_enabled:
        handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
