"""Log set-up: one line per run outcome, as text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from daemon.settings import LogFormat
from daemon.words import one_line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _TextFormatter(logging.Formatter):
    """One record, one line: a newline or control character in a message (a file name) is escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = one_line(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def text_formatter() -> logging.Formatter:
    """The text log format: time, level, the message on one line (a traceback follows on its own lines)."""
    return _TextFormatter(TEXT_FORMAT, TIME_FORMAT)


def setup_logging(fmt: LogFormat, *, verbose: bool = False) -> None:
    """Send gristmill's log to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(text_formatter())
    logger = logging.getLogger("gristmill")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
