"""Logging set-up: plain lines for people, or one JSON object per line for log shippers.

Built on the standard `logging` module (a filter and two formatters, no logging library: the
whole job is ~100 lines and the SDKs we run log through `logging` anyway):

- every record handled while a call or a job runs carries its `logctx` fields (call_sid, tenant,
  stream_sid, job, stage), stamped by a filter on the handler, so lines from the SDKs and from
  libraries carry them too;
- JSON: `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, the context fields, any
  `extra=` fields, and `exception` (the traceback) when there is one;
- text: `12:20:54 INFO    receptionist.call [tenant=bakery call_sid=CA1]: message`, every control
  character shown as an escape, so a caller-controlled value can neither forge a line nor drive
  the terminal; a traceback follows on lines of its own, each starting with "  | ";
- redaction (on unless `LOG_REDACT=0`): phone numbers and secrets are masked in the message, the
  extra fields and the traceback (redact.py).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import SecretStr

from receptionist import logctx
from receptionist.redact import Redactor, secrets_in_environment
from receptionist.untrusted import printable

if TYPE_CHECKING:
    from receptionist.config import Settings

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "log_fields",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_TRACEBACK_PREFIX = "  | "
# The context fields a text line shows (the stream_sid is one per call_sid: JSON only).
_TEXT_FIELDS = tuple(f for f in logctx.FIELDS if f != "stream_sid")
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


_redactor: Redactor | None = Redactor()


def current_redactor() -> Redactor | None:
    """The redactor of the current set-up (None: `LOG_REDACT=0`)."""
    return _redactor


class ContextFilter(logging.Filter):
    """Stamps each record with the fields of the context it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_fields"):
            record.log_fields = logctx.current()
        return True


def _fields_of(record: logging.LogRecord) -> Mapping[str, str]:
    fields: Mapping[str, str] | None = getattr(record, "log_fields", None)
    return logctx.current() if fields is None else fields


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        red = _redactor
        message = record.getMessage()
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": red.text(message) if red else message,
        }
        fields = _fields_of(record)
        entry.update(red.value(fields) if red else fields)  # a call_sid comes from outside
        extras = _extras(record)
        if extras:
            entry.update(red.value(extras) if red else extras)
        if record.exc_info:
            exc = self.formatException(record.exc_info)
            entry["exception"] = red.text(exc) if red else exc
        if record.stack_info:
            stack = self.formatStack(record.stack_info)
            entry["stack"] = red.text(stack) if red else stack
        try:
            line = orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # a lone surrogate (from a hostile frame's "\ud800"): stdlib escapes it
            return json.dumps(entry, default=str, ensure_ascii=True)
        # JSON allows these raw inside strings, but viewers and `str.splitlines` break lines on
        # the Unicode separators and terminals act on C1 controls: escape them as JSON does.
        return _JSON_UNSAFE.sub(_json_escape, line)


class PlainFormatter(logging.Formatter):
    """One line per record: values from outside (a call_sid, a caller number) are in many
    messages, and a newline or an escape code in one must not forge a line or drive the
    terminal. A traceback keeps its own lines, each marked as a continuation."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        red = _redactor
        message = record.getMessage()
        fields = _fields_of(record)
        shown = " ".join(f"{k}={fields[k]}" for k in _TEXT_FIELDS if k in fields)
        line = f"{self.formatTime(record, self.datefmt)} {record.levelname:<7} {record.name}"
        line += f" [{shown}]: {message}" if shown else f": {message}"
        line = printable(red.text(line) if red else line)
        extra = []
        if record.exc_info:
            extra.append(self.formatException(record.exc_info))
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        for block in extra:
            text = red.text(block) if red else block
            line += "".join("\n" + _TRACEBACK_PREFIX + printable(t) for t in text.splitlines())
        return line


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


def setup_logging(
    level: str = "INFO",
    *,
    json_lines: bool = False,
    redact: bool = True,
    secrets: Iterable[str] = (),
) -> None:
    global _redactor
    _redactor = Redactor(secrets) if redact else None
    handler = _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
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


def log_format(settings: Settings, stream: Any = None) -> str:
    """ "json" or "text" for these settings: `LOG_FORMAT=auto` (the default) is text on a
    terminal, where a person reads it, and JSON anywhere else (a container's log, systemd, a
    pipe), where a log shipper does; the older `LOG_JSON=1` means json."""
    if settings.log_format != "auto":
        return settings.log_format
    if settings.log_json:
        return "json"
    stream = sys.stderr if stream is None else stream
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no stream, or a closed one
        return "json"


def secret_settings(settings: Settings) -> list[str]:
    """The values of every secret setting (from the environment or from `.env`)."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    return values


def configure_logging(settings: Settings) -> None:
    """Logging as the settings say: level, format, redaction (with every secret we know of)."""
    setup_logging(
        settings.log_level,
        json_lines=log_format(settings) == "json",
        redact=settings.log_redact,
        secrets=[*secret_settings(settings), *secrets_in_environment()],
    )
