"""Logging set-up: plain lines for people, or one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from receptionist.untrusted import printable


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class _PlainFormatter(logging.Formatter):
    """One line per record: values from outside (a call_sid, a caller number) are in many
    messages, and a newline or an escape code in one must not forge a line or drive the
    terminal. A traceback, appended after the message, keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever `sys.stderr` is at the moment of each record, not the stream that was
    current at set-up: a test runner (or a daemoniser) swaps and closes stderr, and a handler
    bound to the closed one raises "I/O operation on closed file" from every later log line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = _StderrHandler()
    handler.setFormatter(
        _JsonFormatter()
        if json_lines
        else _PlainFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs log every request at INFO; keep them to warnings.
    for noisy in (
        "httpx",
        "google_genai",
        "websockets",
        "uvicorn.access",
        "aiosqlite",
        "alembic",
        "faster_whisper",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
