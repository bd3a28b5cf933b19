"""Does Chromium keep the dashboard's kind of session cookie (``Secure; HttpOnly;
SameSite=Lax``) when the server is plain http on this machine? The demo and the tests serve
http://127.0.0.1, so sign-in works there only if the answer is yes.

It is yes for 127.0.0.1 and localhost (browsers treat loopback as a secure origin), and no for
any other host over plain http: there the cookie is dropped and a sign-in would not stick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from receptionist.bridge.server import serve_in_process
from tests.browser.harness import NewPage, launch_chromium


async def set_cookie(request: Request) -> PlainTextResponse:
    response = PlainTextResponse("signed in")
    response.set_cookie("session", "s3cret", secure=True, httponly=True, samesite="lax")
    return response


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.cookies))


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = Starlette(routes=[Route("/set", set_cookie), Route("/echo", echo)])
    async with serve_in_process(app) as bound:
        yield bound


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_secure_httponly_lax_cookie_is_kept_on_loopback_http(
    port: int, host: str, new_page: NewPage
) -> None:
    page = await new_page("phone")
    await page.goto(f"http://{host}:{port}/set")
    stored = await page.context.cookies()
    assert [(c["name"], c["secure"], c["httpOnly"], c["sameSite"]) for c in stored] == [
        ("session", True, True, "Lax")
    ]
    answer = await page.goto(f"http://{host}:{port}/echo")
    assert answer is not None and await answer.json() == {"session": "s3cret"}
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it


async def test_the_same_cookie_is_dropped_over_http_on_another_host(
    port: int, chromium_executable: Path
) -> None:
    """`dashboard.test` is resolved to 127.0.0.1 by the browser itself (no traffic leaves), but
    by name it is an ordinary host, so plain http there is not a secure origin."""
    async with async_playwright() as playwright:
        browser = await launch_chromium(
            playwright, chromium_executable, "--host-resolver-rules=MAP dashboard.test 127.0.0.1"
        )
        try:
            page = await browser.new_page()
            first = await page.goto(f"http://dashboard.test:{port}/set")
            assert first is not None and await first.text() == "signed in"
            assert await page.context.cookies() == []
            answer = await page.goto(f"http://dashboard.test:{port}/echo")
            assert answer is not None and await answer.json() == {}
        finally:
            await browser.close()
