"""The API's reference page at /docs, served by the real app and read in a real browser with
no network beyond this machine: it must not need a CDN to show anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from receptionist.bridge.app import create_app
from receptionist.bridge.server import serve_in_process
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.engines.base import EngineError, EngineRequest, VoiceEngine
from receptionist.store.db import Database
from tests.browser.harness import NewPage, Offline, Screenshot
from tests.integration.bridge_harness import tenants_dir


def no_engine(request: EngineRequest) -> VoiceEngine:
    raise EngineError("these tests place no calls")


@pytest.fixture
async def server(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[str]:
    settings = load_settings(
        database_url=sqlite_db.url,
        tenants_dir=tenants_dir(tmp_path),
        spool_dir=tmp_path / "spool",
        run_worker=False,
    )
    app = create_app(build_context(settings, db=sqlite_db, engine_factory=no_engine))
    async with serve_in_process(app) as port:
        yield f"http://127.0.0.1:{port}"


async def test_docs_page_reads_offline(
    server: str, desktop_page: Page, offline: Offline, screenshot: Screenshot
) -> None:
    page = desktop_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(f"{server}/docs", wait_until="networkidle")
    assert response is not None and response.status == 200

    assert await page.title() == "Receptionist API"
    assert await page.locator("h1").inner_text() == "Receptionist API"
    body = await page.locator("body").inner_text()
    assert "Authorization: Bearer <key>" in body  # escaped in the HTML, read as text
    headings = await page.locator("section h2").all_inner_texts()
    assert "GET /api/v1/calls" in headings and "GET /api/v1/tenants" in headings, headings
    link = page.get_by_role("link", name="/openapi.json")
    assert await link.get_attribute("href") == "/openapi.json"

    assert requested and all(url.startswith(server) for url in requested), requested
    assert offline.blocked == []
    shot = await screenshot(page)
    assert shot.stat().st_size > 0


async def test_docs_page_fits_a_phone(
    server: str, phone_page: Page, screenshot: Screenshot
) -> None:
    await phone_page.goto(f"{server}/docs")
    await screenshot(phone_page)
    # nothing wider than the screen, so no sideways scrolling
    assert await phone_page.evaluate("document.documentElement.scrollWidth") <= 360


async def test_a_page_that_reaches_outside_is_refused_and_named(
    new_page: NewPage, offline: Offline
) -> None:
    """The guard itself: a stylesheet and a WebSocket on another host are refused before they
    leave the machine, and their URLs kept (the fixture fails a test for them at teardown;
    here they are emptied after being checked)."""
    page = await new_page("desktop")
    await page.set_content(
        "<link rel=stylesheet href='https://fonts.example.com/css?family=Inter'>"
        "<script>const ws = new WebSocket('wss://feed.example.com/live');"
        "ws.onclose = () => { window.socketClosed = true };</script><p>hello</p>"
    )
    await page.wait_for_function("window.socketClosed === true")
    assert sorted(offline.blocked) == [
        "https://fonts.example.com/css?family=Inter",
        "wss://feed.example.com/live",
    ]
    offline.blocked.clear()
