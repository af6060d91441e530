"""The one log configuration of the process: gristmill's loggers, uvicorn's and everyone else's.

One record is one line: control characters in a message (a newline in a file name) are escaped.
`GRISTMILL_LOG_FORMAT=json` writes one JSON object a line with the run's fields (`FIELDS`) where
a call site passed them as `extra=`; under journald each line starts with its `<N>` priority.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from daemon.settings import LogFormat
from daemon.words import one_line

# What call sites may pass as `extra=`; JSON lines carry those present.
FIELDS = ("run_id", "workflow", "step", "server", "model", "duration_ms", "outcome")

# Loggers at INFO; everything else (httpx's line per request, alembic's chatter) at WARNING.
_OURS = ("gristmill", "daemon")
# uvicorn's start-up lines repeat what gristmill says; a line per request is not a daemon's log.
_QUIET = ("uvicorn", "uvicorn.error", "uvicorn.access")

# syslog priorities, as sd-daemon(3) reads them at the start of a line.
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields (`FIELDS`) a call site attached to this record."""
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the run's fields, a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TextFormatter(logging.Formatter):
    """`time LEVEL message` on one line (control characters escaped); a traceback follows, indented."""

    def __init__(self, *, timestamps: bool = True) -> None:
        super().__init__(TEXT_FORMAT if timestamps else "%(levelname)s %(message)s", TIME_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = one_line(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def formatException(self, ei: Any) -> str:
        return "\n".join("    " + line for line in super().formatException(ei).splitlines())


class JournalPrefix(logging.Formatter):
    """Wraps a formatter: every line gets the record's `<N>` priority, which journald strips and keeps."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).splitlines())


def under_journald(journal_stream: str | None, stream: TextIO) -> bool:
    """Whether `stream` is the journal stream systemd named in JOURNAL_STREAM ("DEVICE:INODE")."""
    if not journal_stream:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return journal_stream == f"{info.st_dev}:{info.st_ino}"


def text_formatter() -> logging.Formatter:
    """The text log format: time, level, the message on one line (a traceback follows on its own lines)."""
    return TextFormatter()


def make_formatter(fmt: LogFormat, *, journald: bool = False) -> logging.Formatter:
    """The formatter for this format; journald gets priorities and no timestamps of ours."""
    inner = JsonFormatter() if fmt is LogFormat.JSON else TextFormatter(timestamps=not journald)
    return JournalPrefix(inner) if journald else inner


def setup_logging(
    fmt: LogFormat, *, verbose: bool = False, journal_stream: str | None = None, stream: TextIO | None = None
) -> None:
    """Send every logger's records through one handler on stderr, in the chosen format."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(fmt, journald=under_journald(journal_stream, stream)))
    handler._gristmill = True  # type: ignore[attr-defined]  # ours, replaced on the next call
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_gristmill", False)] + [handler]
    root.setLevel(logging.WARNING)
    for name in _OURS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
