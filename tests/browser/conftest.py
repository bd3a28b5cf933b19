"""Browser fixtures: Debian's Chromium driven by Playwright's async API, in the test's own loop.

- ``chromium_executable`` (session): the binary; fails with an install hint when missing.
- ``browser``: a headless Chromium for this test.
- ``phone_page`` / ``desktop_page``: a page in a fresh context, 360×640 touch phone
  (device scale 2, is_mobile) or 1280×800 desktop; Indian English, Asia/Kolkata.
- ``new_page``: the factory behind both, for a test that needs several (``await
  new_page("phone")``, ``await new_page("desktop", locale="hi-IN")``).
- ``offline``: the guard every page of those fixtures has; ``offline.blocked`` lists the
  requests it refused. A test that reached any host but this machine fails at teardown, and so
  does one whose page threw an uncaught JavaScript error.
- ``screenshot``: ``await screenshot(page)`` saves ``<output>/screenshots/<test name>.png``
  (``await screenshot(page, "calls-list")`` names it); returns the path.

Type a test's arguments with ``Page`` (Playwright) and ``NewPage``, ``Offline``, ``Screenshot``
(tests/browser/harness.py). Every test in this folder is marked ``browser`` (``-m "not
browser"`` leaves them out); ``RECEPTIONIST_TEST_BROWSER=0`` skips them.

Why one Chromium per test and not per session: Playwright's async objects belong to the event
loop that made them, and pytest-asyncio gives each test its own loop. A session-wide browser
would force every test and every async fixture here into the session loop, and the shared
database fixtures (``db``, ``sqlite_db``, ``pg_db``) run in the test's loop: a server or
database from one loop used from another hangs or fails. Starting Playwright and Chromium costs
about half a second a test on this 2-core machine, which buys fixtures that just compose.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.harness import (
    INSTALL_HINT,
    NewPage,
    Offline,
    Screenshot,
    browser_tests_enabled,
    find_chromium,
    launch_chromium,
    screenshot_path,
)

_HERE = Path(__file__).parent
_DISABLED = "browser tests disabled by RECEPTIONIST_TEST_BROWSER=0"

VIEWPORTS: dict[str, dict[str, Any]] = {
    # a 5.5-inch Android phone in portrait, as an owner holds it
    "phone": {
        "viewport": {"width": 360, "height": 640},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (tests/browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=_DISABLED)
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)
            if not browser_tests_enabled():
                item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    if not browser_tests_enabled():
        pytest.skip(_DISABLED)
    path = find_chromium()
    if path is None:
        chosen = os.environ.get("RECEPTIONIST_CHROMIUM")
        where = f"RECEPTIONIST_CHROMIUM={chosen!r} is not an executable file. " if chosen else ""
        pytest.fail(where + INSTALL_HINT, pytrace=False)
    return path


@pytest.fixture
async def browser(chromium_executable: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright, chromium_executable)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def offline() -> Offline:
    return Offline()


@pytest.fixture
async def new_page(browser: Browser, offline: Offline) -> AsyncIterator[NewPage]:
    contexts: list[BrowserContext] = []
    page_errors: list[str] = []

    async def make(kind: Literal["phone", "desktop"] = "phone", **context_options: Any) -> Page:
        options: dict[str, Any] = {
            **VIEWPORTS[kind],
            "locale": "en-IN",
            "timezone_id": "Asia/Kolkata",
            **context_options,
        }
        context = await browser.new_context(**options)
        contexts.append(context)
        await offline.install(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: page_errors.append(f"{page.url}: {exc}"))
        return page

    yield make
    for context in contexts:
        await context.close()
    assert not offline.blocked, f"pages asked for hosts other than this machine: {offline.blocked}"
    assert not page_errors, f"uncaught JavaScript errors: {page_errors}"


@pytest.fixture
async def phone_page(new_page: NewPage) -> Page:
    return await new_page("phone")


@pytest.fixture
async def desktop_page(new_page: NewPage) -> Page:
    return await new_page("desktop")


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    test_name = re.sub(r"^test_", "", request.node.name)

    async def save(page: Page, name: str | None = None, *, full_page: bool = True) -> Path:
        path = screenshot_path(name or test_name)
        await page.screenshot(path=path, full_page=full_page)
        return path

    return save
