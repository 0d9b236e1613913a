"""Logging set-up for entry points: human-readable by default, JSON with FRAMEIO_KIT_LOG_FORMAT=json.

The ingress and the workers write lines through a block buffer flushed every
FRAMEIO_KIT_LOG_FLUSH_INTERVAL seconds (and at once for warnings and errors): a write and flush
per line was a fifth of the ingress CPU per webhook (docs/performance.md).

Nothing here changes the `logging` module's globals (`_srcfile`, `logThreads`, ...): an
integration's own handlers and formats (`%(lineno)d`, `%(threadName)s`) keep working in our processes.
The per-request and per-task lines take a direct path (`log_info`) only while nothing but the kit's own
handler would see them.

Values from requests (ids, event types, account ids) are escaped on the kit's own loggers
(`protect_kit_loggers`), so a line break in an id cannot split or forge a log line, whatever handler writes it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from shared import tracing
from shared.settings import Settings

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_BUFFER_BYTES = 1 << 16

KIT_LOGGERS = (
    "frameio_kit.ingress",
    "frameio_kit.install",
    "frameio_kit.oauth",
    "frameio_kit.worker",
    "frameio_kit.ledger",
    "frameio_kit.ordering",
    "frameio_kit.ratelimit",
    "frameio_kit.routing",
)
"""The loggers whose arguments `EscapingFilter` escapes: every `frameio_kit.*` logger the kit's modules
use (tests/test_security_round3_logs.py checks the list against the source)."""


def printable(value: object) -> str:
    """`value` as text with control and other non-printable characters shown as escapes (`\\n`,
    `\\x1b`): ids and error texts come from outside and must not split a log line or drive the
    operator's terminal."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Multiline(str):
    """A log argument kept as it is by `EscapingFilter`: a (scrubbed) traceback whose line breaks
    are meant, as with `exc_info`."""

    __slots__ = ()


def _escaped(arg: Any) -> Any:
    if isinstance(arg, str):
        return arg if arg.isprintable() or isinstance(arg, Multiline) else printable(arg)
    if arg is None or isinstance(arg, (int, float)):
        return arg
    try:
        text = str(arg)  # an exception or other object: escaped only if its text needs it
    except Exception:
        return arg  # logging reports a broken __str__ when it formats the record, as without this filter
    return arg if text.isprintable() else printable(text)


class EscapingFilter(logging.Filter):
    """Escapes a record's arguments on the kit's loggers, once, before any handler formats it.

    On the loggers rather than in our formatter: the kit's lines also reach handlers an
    integration adds (its own formats, error trackers) and, with the App served by another
    server, never meet our formatter. The format string itself is the kit's code and is left
    alone (house style: lazy `%s` arguments, never f-strings), so meant line breaks stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not args:
            return True
        if isinstance(args, tuple):
            # Hot path (one INFO line per request): plain printable strings and numbers pass untouched.
            for arg in args:
                if not ((type(arg) is str and arg.isprintable()) or type(arg) in (int, float)):
                    record.args = tuple(_escaped(a) for a in args)
                    break
        elif isinstance(args, Mapping):
            record.args = {key: _escaped(value) for key, value in args.items()}
        return True


_ESCAPING = EscapingFilter()


def protect_kit_loggers() -> None:
    """Put `EscapingFilter` on each of `KIT_LOGGERS` (idempotent). The `Registry` calls it, so every
    process that runs an App (ingress, workers, an App served by another server) escapes alike."""
    for name in KIT_LOGGERS:
        logging.getLogger(name).addFilter(_ESCAPING)


class _StampCache:
    """`strftime` of the current second, computed once per second instead of once per line."""

    def __init__(self, fmt: str, convert: Callable[[float | None], time.struct_time]) -> None:
        self._fmt = fmt
        self._convert = convert
        self._second = -1
        self._stamp = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self._fmt, self._convert(created))
            self._second = second
        return self._stamp


class TextFormatter(logging.Formatter):
    """`asctime level name: message`, the stock layout, with the date part cached per second;
    `trace=<id>` appended when tracing is on (`TraceIdFilter` sets it)."""

    def __init__(self, traced: bool = False) -> None:
        super().__init__(_TEXT_FORMAT + (" trace=%(trace_id)s" if traced else ""))
        self._traced = traced
        self._stamps = _StampCache(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._stamps(record.created)},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = record.getMessage()
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.message}"
        return f"{line} trace={getattr(record, 'trace_id', '-')}" if self._traced else line

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """The line for a record with these fields and no exception or trace (`log_info` writes it directly)."""
        msecs = int((created - int(created)) * 1000)
        return f"{self._stamps(created)},{msecs:03d} {levelname:<7} {name}: {message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as the text format."""

    def __init__(self) -> None:
        super().__init__()
        self._stamps = _StampCache("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """The line for a record with these fields and no exception or trace (`log_info`)."""
        msecs = int((created - int(created)) * 1000)
        entry = {"ts": f"{self._stamps(created)}.{msecs:03d}Z", "level": levelname, "logger": name, "message": message}
        return json.dumps(entry)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": f"{self._stamps(record.created)}.{int(record.msecs):03d}Z",
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


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines go through a 64 KiB buffer on `stream`, written out when it fills, when a WARNING or
    worse arrives (so problems show at once, after the lines before them), every `interval`
    seconds from a daemon thread, at exit and before a fork; a process killed outright loses at
    most the last `interval` seconds of INFO lines."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        super().__init__(stream)
        self.interval = interval
        self._dirty = False
        self._flusher: threading.Thread | None = None
        # Threads do not survive a fork: a forked child (prefork pool) starts its own flusher.
        os.register_at_fork(before=self.flush, after_in_child=self._forget_flusher)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record), record.levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str, levelno: int) -> None:
        """Buffer one formatted line (the caller holds the handler's lock)."""
        self.stream.write(line + self.terminator)
        if levelno >= logging.WARNING:
            self.stream.flush()
            self._dirty = False
            return
        self._dirty = True
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_periodically, name="frameio-kit-log-flush", daemon=True)
            self._flusher.start()

    def _forget_flusher(self) -> None:
        self._flusher = None

    def _flush_periodically(self) -> None:
        while not self.stream.closed:
            time.sleep(self.interval)
            if self._dirty:
                self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            self._dirty = False
            if not self.stream.closed:
                self.stream.flush()
        finally:
            self.release()


_direct: BufferedStreamHandler | None = None
"""The handler `configure_logging` installed, while it is the root's only one: `log_info`'s fast path."""


def log_info(logger: logging.Logger, message: str, *args: object) -> None:
    """`logger.info(message, *args)` for the one line per request or task on the hot paths.

    When the line would reach only the buffered handler `configure_logging` installed (no handler or
    filter on the way but the kit's `EscapingFilter`, whose escaping is applied here), it is formatted
    and buffered directly, without a LogRecord: the same text at a fraction of the CPU (a LogRecord's
    caller lookup and thread and process fields cost about 10% of the ingress's CPU per webhook at
    INFO; docs/performance.md). Anything else on the way (a user's handler or filter, tracing's
    trace-id filter) gets an ordinary `logger.info`, so a user's own formats see every field.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _direct
    formatter = handler.formatter if handler is not None else None
    if (
        handler is None
        or not isinstance(formatter, TextFormatter | JsonFormatter)
        or not _only_through(logger, handler)
    ):
        logger.info(message, *args, stacklevel=2)
        return
    text = message % tuple(_escaped(a) for a in args) if args else message
    line = formatter.line(time.time(), "INFO", logger.name, text)
    handler.acquire()
    try:
        handler.write_line(line, logging.INFO)
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": text, "name": logger.name, "levelno": logging.INFO}))
    finally:
        handler.release()


def _only_through(logger: logging.Logger, handler: BufferedStreamHandler) -> bool:
    node: logging.Logger | None = logger
    while node is not None and node.parent is not None:
        if node.handlers or not node.propagate or any(f is not _ESCAPING for f in node.filters):
            return False
        node = node.parent
    root = logging.root
    return (
        len(root.handlers) == 1
        and root.handlers[0] is handler
        and not root.filters
        and not handler.filters
        and handler.level <= logging.INFO
    )


def _stderr_block_buffered() -> TextIO | None:
    """A block-buffered text stream on stderr's descriptor (sys.stderr itself flushes every line),
    or None when stderr has no descriptor (captured by a test runner)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return open(fd, "w", buffering=_BUFFER_BYTES, encoding=encoding, errors="backslashreplace", closefd=False)


def configure_logging(settings: Settings, *, buffered: bool = False) -> None:
    """Root handler and level from the settings. `buffered` (the ingress and workers: long-running,
    many lines) applies FRAMEIO_KIT_LOG_FLUSH_INTERVAL; commands flush every line."""
    stream = _stderr_block_buffered() if buffered and settings.log_flush_interval > 0 else None
    handler: logging.Handler
    if stream is not None:
        handler = BufferedStreamHandler(stream, settings.log_flush_interval)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter(settings.tracing_enabled))
    if settings.tracing_enabled:
        handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    for old in root.handlers:
        old.flush()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    global _direct
    _direct = handler if isinstance(handler, BufferedStreamHandler) else None
