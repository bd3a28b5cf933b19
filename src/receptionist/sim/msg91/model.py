"""The MSG91 double's data: what it accepted, what it recorded, the reports it sent, its faults."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import orjson
from starlette.responses import Response

MAX_VARIABLE_CHARS = 1024
IST = timezone(timedelta(hours=5, minutes=30))
GARBLED = b'{"status": "success", "hasError": fal'  # cut short: not JSON
COMPONENT_KEY = re.compile(r"^(header|body|button)_(\d+)$")
SUCCESS_TEXT = "Request accepted; delivery reports will follow"
DEFAULT_ERRORS = {
    400: "Bad request",
    401: "Authentication failure",
    403: "Forbidden",
    404: "Not found",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def msg91_error_body(status: int, message: str | None = None) -> bytes:
    """An error body shaped like MSG91's."""
    text = message or DEFAULT_ERRORS.get(status, "Request failed")
    return orjson.dumps({"status": "fail", "hasError": True, "errors": text, "code": str(status)})


def error_response(status: int, message: str) -> Response:
    return Response(msg91_error_body(status, message), status, media_type="application/json")


@dataclass(frozen=True)
class AcceptedMessage:
    """One recipient of one accepted request."""

    request_id: str
    uuid: str  # per-recipient id, as in MSG91's reports
    to: str
    template: str
    language: str
    variables: tuple[str, ...]
    integrated_number: str
    namespace: str | None
    auth_key: str
    at: datetime  # UTC, when accepted


@dataclass
class RecordedRequest:
    """Every request the double received; ``status_code`` is None until answered (or never,
    for a dropped connection)."""

    method: str
    path: str
    auth_key: str | None
    body: bytes
    status_code: int | None = None
    request_id: str | None = None  # set when accepted
    outcome: str = "pending"  # accepted | refused | failed | garbled | hung | dropped | held
    held: bool = False  # held by the gate (see FakeMsg91.hold) at some point

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class SentReport:
    url: str  # without the secret
    payload: dict[str, Any]
    status_code: int | None  # the webhook's answer; None when it could not be reached
    error: str | None = None


@dataclass(frozen=True)
class Template:
    variables: int
    namespace: str | None


@dataclass(frozen=True)
class Fault:
    kind: Literal["fail", "garble", "hang", "drop"]
    status: int = 200
    body: bytes = b""
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    accept: bool = True


@dataclass
class Gate:
    passes: int  # requests still let through before holding starts
    accept: bool
    opened: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Parsed:
    integrated_number: str
    template: str
    language: str
    namespace: str | None
    recipients: list[tuple[str, tuple[str, ...]]]


class BadRequest(Exception):
    pass
