"""Structured logs: one JSON object per line, a request id on every line of a request.

The HTTP layer sets ``REQUEST_ID`` for the duration of each request; every record logged
meanwhile (in the event loop or in a worker thread that inherited the context) carries it.
``configure_logging`` sends the records to stderr and to a rotating, owner-only log file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any

from xnai.config import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("xnai_request_id", default=None)
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MB = 1024 * 1024

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def accept_request_id(incoming: str | None) -> str:
    """The client's ``X-Request-ID`` when it is safe to log and echo, else a new one."""
    if incoming is not None and SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def escape_control(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "request_id"}


def _request_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extras.

    Non-ASCII and control characters are escaped, so text from a request can never start
    a new line or fake a record; values JSON cannot hold are written as their ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        for key, value in _extras(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value ...``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of text (tracebacks follow, indented)."""
        rid = _request_id(record) or "-"
        parts = [
            _timestamp(record),
            record.levelname,
            record.name,
            f"[{rid}]",
            escape_control(record.getMessage()),
        ]
        parts += [
            f"{key}={escape_control(json.dumps(value, default=str))}"
            for key, value in _extras(record).items()
        ]
        line = " ".join(parts)
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    " + row for row in trace.splitlines())
        return line


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A RotatingFileHandler whose files are created owner-only (mode 0600)."""

    def _open(self) -> TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # also a file that existed with a wider mode
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def log_file_path(settings: Settings) -> Path:
    """``enterprise.monitoring.log_file``, default ``<data_dir>/logs/xnai.log``."""
    configured = settings.enterprise.monitoring.log_file
    if configured is not None:
        return settings.absolute(configured)
    return settings.data_dir / "logs" / "xnai.log"


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> Path | None:
    """Send the process's logs to ``stream`` (stderr) and, unless disabled, to the rotating
    log file, in the configured format and level; returns the log file's path.

    Replaces only the handlers an earlier call added, so calling it again is safe.
    """
    m = settings.enterprise.monitoring
    formatter: logging.Formatter = JsonFormatter() if m.log_format == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    path = None
    if m.log_to_file:
        path = log_file_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            PrivateRotatingFileHandler(
                path, maxBytes=int(m.log_max_mb * MB), backupCount=m.log_backups, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "xnai_handler", False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.xnai_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(m.log_level)
    return path
