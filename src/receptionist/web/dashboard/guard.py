"""Small pieces of the dashboard's door: the form body, CSRF checks, cookie flags, and the brake
on failed sign-ins. Each is a plain function or a small class with no knowledge of the pages."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.requests import Request

MAX_FORM_BYTES = 8 * 1024  # our forms carry a key, a token and a choice or two


class BadForm(Exception):
    """The body is not a small urlencoded form."""


async def read_form(
    request: Request, *, max_bytes: int = MAX_FORM_BYTES, max_fields: int = 20
) -> dict[str, str]:
    """The posted form's fields (first value of each), read with a size cap. Parsed here rather
    than with python-multipart: the dashboard posts only urlencoded forms (small ones, but for
    a tenant's settings, which pass larger bounds)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("expected a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadForm("form too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise BadForm("unreadable form") from None
    return {name: values[0] for name, values in fields.items() if values}


def same_token(presented: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cookie_secure(request: Request, forced: bool | None) -> bool:
    """Secure cookies over HTTPS and on loopback (browsers treat http://127.0.0.1 and
    http://localhost as secure contexts and keep such cookies); plain HTTP to another address
    would lose a Secure cookie and loop on the sign-in page, so there it is left off unless the
    operator forces it."""
    if forced is not None:
        return forced
    return request.url.scheme == "https" or is_loopback(request.url.netloc)


def safe_next(target: str | None, prefix: str) -> str:
    """Where to go after signing in: only a path inside the dashboard (no open redirect)."""
    home = prefix + "/"
    if not target or not target.startswith(prefix + "/") or target.startswith("//"):
        return home
    if any(ch in target for ch in ("\\", "\r", "\n", "\t")) or len(target) > 500:
        return home
    return target


@dataclass
class LoginBrake:
    """Failed sign-ins per client address: each failure waits `delay_s`, and after
    `max_failures` within `window_s` the address is refused until the window passes.
    In memory, per process (a second server process has a brake of its own)."""

    max_failures: int = 10
    window_s: float = 600.0
    delay_s: float = 1.0
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)

    def _recent(self, client: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._failures.get(client, []) if now - t < self.window_s]
        if kept:
            self._failures[client] = kept
        else:
            self._failures.pop(client, None)
        return kept

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.max_failures

    def failed(self, client: str) -> None:
        times = self._recent(client)
        times.append(self.clock())
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:  # bounded, whoever sends what
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


@dataclass
class StreamSlots:
    """Live streams open per session, bounded (a tab left open many times cannot pile them up)."""

    per_session: int = 3
    _open: dict[int, int] = field(default_factory=dict)

    def take(self, session_id: int) -> bool:
        if self._open.get(session_id, 0) >= self.per_session:
            return False
        self._open[session_id] = self._open.get(session_id, 0) + 1
        return True

    def give_back(self, session_id: int) -> None:
        left = self._open.get(session_id, 0) - 1
        if left > 0:
            self._open[session_id] = left
        else:
            self._open.pop(session_id, None)
