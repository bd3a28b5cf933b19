"""What the browser tests share besides fixtures: finding Debian's Chromium, launching it the way
that works here, keeping pages off the network, and where screenshots go.

Environment:
- ``RECEPTIONIST_TEST_BROWSER=0`` skips the browser tests (default: on). Otherwise a missing
  Chromium fails them with an install hint, never a silent skip.
- ``RECEPTIONIST_CHROMIUM=/path/to/chromium`` chooses the browser binary.
- ``RECEPTIONIST_TEST_OUTPUT=DIR`` is where screenshots land (default ``test-output`` at the
  repository's root), under ``DIR/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    WebSocketRoute,
)

REPO = Path(__file__).resolve().parents[2]

INSTALL_HINT = (
    "Chromium not found: install Debian's chromium package (./run test or ./run setup-tests "
    "does it), set RECEPTIONIST_CHROMIUM to a Chromium binary, or set "
    "RECEPTIONIST_TEST_BROWSER=0 to skip the browser tests"
)

# The Debian binary itself, not /usr/bin/chromium: that launcher is a shell script that sources
# /etc/chromium.d (extensions, GPU flags, a /dev/shm probe that errors in some containers).
_CANDIDATES = ("/usr/lib/chromium/chromium",)
_ON_PATH = ("chromium", "chromium-browser", "google-chrome")

# --disable-dev-shm-usage: containers often give /dev/shm 64 MB, which Chromium outgrows and
# then crashes; /tmp has room. The sandbox stays off (Playwright's default): it cannot start as
# root, which CI is.
LAUNCH_ARGS = ("--disable-dev-shm-usage",)


class NewPage(Protocol):
    """The `new_page` fixture: ``await new_page("phone")``, ``await new_page("desktop",
    locale="hi-IN")`` (any other browser-context option overrides the viewport's)."""

    def __call__(
        self, kind: Literal["phone", "desktop"] = ..., **context_options: Any
    ) -> Awaitable[Page]: ...


class Screenshot(Protocol):
    """The `screenshot` fixture: ``await screenshot(page)`` or ``await screenshot(page,
    "calls-list")``; returns the PNG's path."""

    def __call__(
        self, page: Page, name: str | None = ..., *, full_page: bool = ...
    ) -> Awaitable[Path]: ...


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def browser_tests_enabled() -> bool:
    """False when ``RECEPTIONIST_TEST_BROWSER`` is set to 0/false/no/off."""
    value = os.environ.get("RECEPTIONIST_TEST_BROWSER", "1").strip().lower()
    return value not in {"0", "false", "no", "off", ""}


def find_chromium() -> Path | None:
    """The Chromium binary to drive, or None when there is none."""
    chosen = os.environ.get("RECEPTIONIST_CHROMIUM")
    if chosen:
        path = Path(chosen)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    for name in _ON_PATH:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


async def launch_chromium(playwright: Playwright, executable: Path, *extra_args: str) -> Browser:
    """Headless Chromium (the new headless mode: Chromium ≥ 132 has no other behind
    ``--headless``), no sandbox, no download of a browser of Playwright's own."""
    return await playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        chromium_sandbox=False,
        args=[*LAUNCH_ARGS, *extra_args],
    )


def is_loopback(url: str) -> bool:
    """True for addresses on this machine and for URLs that go to no host at all."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "devtools"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS or (parts.hostname or "").startswith("127.")


@dataclass
class Offline:
    """Keeps a browser context on this machine: every request (HTTP, WebSocket) to another
    host is refused before it leaves and its URL kept in `blocked`, so a page that would reach
    a CDN or a font service fails its test instead of quietly working only when online."""

    blocked: list[str] = field(default_factory=list)

    async def install(self, context: BrowserContext) -> None:
        await context.route(lambda url: not is_loopback(url), self._refuse)
        await context.route_web_socket(lambda url: not is_loopback(url), self._refuse_socket)

    async def _refuse(self, route: Route) -> None:
        self.blocked.append(route.request.url)
        await route.abort("blockedbyclient")

    async def _refuse_socket(self, ws: WebSocketRoute) -> None:
        self.blocked.append(ws.url)
        await ws.close(code=1008, reason="the tests allow no host but this machine")


def output_dir() -> Path:
    """Where the tests' files for people (screenshots) go; git ignores the default."""
    return Path(os.environ.get("RECEPTIONIST_TEST_OUTPUT") or REPO / "test-output")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def screenshot_path(name: str) -> Path:
    """``<output>/screenshots/<name>.png`` with `name` made safe as one file name."""
    safe = _UNSAFE.sub("-", name).strip("-.") or "page"
    path = output_dir() / "screenshots" / f"{safe[:150]}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
