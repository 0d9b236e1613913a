"""Logging set-up for entry points: human-readable by default, JSON with FRAMEIO_KIT_LOG_FORMAT=json.

The ingress and the workers write lines through a block buffer flushed every
FRAMEIO_KIT_LOG_FLUSH_INTERVAL seconds (and at once for warnings and errors): a write and flush
per line was a fifth of the ingress CPU per webhook (docs/performance.md).

Nothing here changes the `logging` module's globals (`_srcfile`, `logThreads`, ...): an
integration's own handlers and formats (`%(lineno)d`, `%(threadName)s`) keep working in our processes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from shared import tracing
from shared.settings import Settings

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_BUFFER_BYTES = 1 << 16


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as the text format."""

    def __init__(self) -> None:
        super().__init__()
        self._stamps = _StampCache("%Y-%m-%dT%H:%M:%S", time.gmtime)

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
