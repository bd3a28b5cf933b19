"""The owner's dashboard in a real Chromium, served by the real server app (bridge, API and
dashboard together) on a real database: signing in, a call placed through the bridge by the
simulator and watched live, the call's page, the list's filters, search, paging and CSV, Hindi,
hostile text, the operator's tenant switch, an ended session, and pages that fit a phone.

Every wait is on the page's state or the server's (Playwright's `expect`, bounded), never a
sleep. Screenshots go to <test output>/screenshots/ (`phone-*`, `desktop-*`); `readme-*` are
the same views at one device pixel per CSS pixel, small enough to commit under docs/."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Dialog, Locator, Page, expect

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.store.db import Database
from receptionist.store.schema import web_sessions
from receptionist.store.web_sessions import expire_session_now
from tests.browser.dashboard_site import (
    ANSWERED,
    ASKED,
    GUARD_S,
    HOSTILE,
    Site,
    assert_fits,
    open_menu,
    running_site,
    seed_many,
    sign_in,
    watch_subscriptions,
)
from tests.browser.harness import NewPage, Screenshot, screenshot_path
from tests.integration.test_api import seed_call
from tests.integration.test_notifications import insert, new

# The server and Chromium share two cores with the rest of the suite: a page may take seconds.
expect.set_options(timeout=GUARD_S * 1000)


@pytest.fixture
async def site(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(sqlite_db, tmp_path) as running:
        yield running


async def readme_shot(page: Page, name: str, down_to: Locator | None = None) -> Path:
    """One CSS pixel per image pixel (a phone's device scale 2 would quadruple the file): the
    copies kept in docs/screenshots/ for the README are made from these. `down_to`: the page
    from its top to that element's bottom, instead of all of it."""
    path = screenshot_path(f"readme-{name}")
    clip = None
    if down_to is not None:
        box = await down_to.bounding_box()
        assert box is not None, "the element to end the picture at is not shown"
        width = await page.evaluate("document.documentElement.clientWidth")
        clip = {"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 12}
    await page.screenshot(path=path, full_page=True, scale="css", clip=clip)
    return path


def rows(page: Page) -> Locator:
    """The rows of the calls list."""
    return page.get_by_test_id("call-list").get_by_test_id("call-row")


async def sids(page: Page) -> set[str]:
    found = await rows(page).all()
    return {await row.get_attribute("data-call-sid") or "" for row in found}


# --- signing in ---------------------------------------------------------------------------------


async def test_sign_in_on_a_phone(site: Site, phone_page: Page, screenshot: Screenshot) -> None:
    page = phone_page
    await page.goto(site.app("/"))  # not signed in: the sign-in form, which returns here
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await assert_fits(page)
    await screenshot(page, "phone-sign-in")

    await page.get_by_test_id("login-key").fill("rk_00000000_" + "x" * 43)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text(re.compile("did not work"))
    assert "rk_session" not in {c["name"] for c in await page.context.cookies()}

    await page.get_by_test_id("login-key").fill(site.keys["bakery"])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("today-answered")).to_have_text("1")
    assert page.url == site.app("/")
    await expect(page.get_by_test_id("who")).to_contain_text(re.compile("bakery", re.I))
    await expect(page.locator("[data-testid=today-type][data-type=order]")).to_be_visible()
    await expect(
        page.get_by_test_id("today-urgent").locator("[data-call-sid='CAb-today']")
    ).to_be_visible()
    delivered = page.locator("[data-testid=today-message-status][data-status=delivered]")
    await expect(delivered).to_be_visible()
    await expect(page.get_by_test_id("today-spend-amount")).to_have_text(re.compile(r"^₹.*\$"))
    await expect(page.get_by_test_id("calls-chart").locator("canvas")).to_have_count(1)
    await assert_fits(page)
    await screenshot(page, "phone-today")

    await page.get_by_test_id("nav-messages").click()
    messages = page.get_by_test_id("message-list").get_by_test_id("message-row")
    await expect(messages).to_have_count(3)  # the bakery's, not the saloon's
    await page.get_by_test_id("messages-status").select_option("failed")
    await page.get_by_test_id("messages-filter").get_by_role("button").click()
    await expect(messages).to_have_count(1)
    await expect(messages.first).to_have_attribute("data-status", "failed")
    await expect(messages.first.get_by_test_id("resend-button")).to_be_visible()
    await page.get_by_test_id("messages-status").select_option("")
    await page.get_by_test_id("messages-filter").get_by_role("button").click()
    await expect(messages).to_have_count(3)
    await assert_fits(page)
    await screenshot(page, "phone-messages")


# --- live ---------------------------------------------------------------------------------------


@pytest.fixture
async def any_site(db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    """The site on SQLite (the live feed in-process) and on PostgreSQL (LISTEN/NOTIFY)."""
    async with running_site(db, tmp_path) as running:
        yield running


async def test_a_call_is_watched_live_and_drops_into_the_list(
    any_site: Site, phone_page: Page, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, page = any_site, phone_page
    listening = watch_subscriptions(site.bridge.ctx.live, monkeypatch)
    await sign_in(page, site)
    await expect(page.get_by_test_id("live-empty")).to_be_visible()
    await expect(page.get_by_test_id("live-state")).to_have_text("Live")  # the stream is open
    await asyncio.wait_for(listening.wait(), GUARD_S)  # and the server feeds it
    await page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

    call_sid = "CAlive" + "0" * 10
    caller = asyncio.create_task(
        place_call(
            CallOptions(
                url=site.bridge.url("bakery"),
                call_sid=call_sid,
                realtime=False,
                from_number="+919811112222",
            ),
            # the caller waits for each held reply; the bound is the test's, not a pace
            CallerScript(utterances=list(ASKED), turn_timeout_s=GUARD_S * 3),
        )
    )
    try:
        row = page.locator(f"[data-testid=live-call][data-call-sid='{call_sid}']")
        bubbles = row.get_by_test_id("bubble")
        # the model holds its first answer: only the greeting has been said
        await site.holds[0].wait_reached(within_s=GUARD_S)
        await expect(row).to_be_visible()
        await expect(row).to_contain_text("+919811112222")
        await expect(page.get_by_test_id("live-empty")).to_have_count(0)
        await expect(page.get_by_test_id("today-in-progress")).to_have_text("1")
        await expect(bubbles).to_have_count(1)
        await expect(bubbles.first).to_have_attribute("data-speaker", "agent")

        site.holds[0].release()  # the answer and the question it answers join the transcript
        await site.holds[1].wait_reached(within_s=GUARD_S)
        await expect(bubbles).to_have_count(3)
        await expect(bubbles.nth(1)).to_have_text(ASKED[0])
        await expect(bubbles.nth(1)).to_have_attribute("data-speaker", "caller")
        await expect(bubbles.nth(2)).to_have_text(ANSWERED[0])
        assert not caller.done()  # still on the line, held at the second answer
        await assert_fits(page)
        if site.db.dialect == "sqlite":
            await screenshot(page, "phone-today-live")
            await readme_shot(page, "phone-today-live", page.get_by_test_id("live-section"))
        else:
            await screenshot(page, f"phone-today-live-{site.db.dialect}")

        site.holds[1].release()
        result = await asyncio.wait_for(caller, GUARD_S * 3)
    finally:
        for hold in site.holds:
            hold.release()
        if not caller.done():
            caller.cancel()
    assert result.ok, result.error

    # the call ended: it leaves the live list and heads the latest calls, with no reload
    await expect(row).to_have_count(0)
    await expect(page.get_by_test_id("live-empty")).to_be_visible()
    await expect(page.get_by_test_id("today-in-progress")).to_have_text("0")
    recent = page.get_by_test_id("recent-calls").get_by_test_id("call-row")
    await expect(recent.first).to_have_attribute("data-call-sid", call_sid)
    await expect(recent.first).to_contain_text("+919811112222")
    assert await page.evaluate("window.sameDocument") is True

    await recent.first.locator("a").click()  # the call's own page, from the database
    await expect(page.get_by_test_id("call")).to_have_attribute("data-call-sid", call_sid)
    said = page.get_by_test_id("call-transcript").get_by_test_id("bubble")
    await expect(said).to_have_count(5)
    texts = [t.strip() for t in await said.locator("p").all_inner_texts()]
    assert texts[1:] == [ASKED[0], ANSWERED[0], ASKED[1], ANSWERED[1]], texts
    await expect(page.get_by_test_id("call-status")).to_have_text("Completed")


# --- one call -----------------------------------------------------------------------------------


async def test_a_call_page_on_a_phone_and_a_desk(
    site: Site, new_page: NewPage, screenshot: Screenshot
) -> None:
    phone = await new_page("phone")
    await sign_in(phone, site)
    await phone.goto(site.app("/calls/CAb0"))
    await check_call_page(phone)
    await assert_fits(phone)
    await screenshot(phone, "phone-call")

    desk = await new_page("desktop")
    await sign_in(desk, site)
    await assert_fits(desk)
    await screenshot(desk, "desktop-today")
    await desk.get_by_test_id("nav-calls").click()
    await expect(rows(desk)).to_have_count(7)
    await screenshot(desk, "desktop-calls")
    await desk.locator("[data-testid=call-row][data-call-sid=CAb0] a").click()
    await check_call_page(desk)
    await assert_fits(desk)
    await screenshot(desk, "desktop-call")
    await readme_shot(desk, "desktop-call")


async def check_call_page(page: Page) -> None:
    await expect(page.get_by_test_id("call")).to_have_attribute("data-call-sid", "CAb0")
    bubbles = page.get_by_test_id("call-transcript").get_by_test_id("bubble")
    await expect(bubbles).to_have_count(2)
    await expect(bubbles.nth(0)).to_have_attribute("data-speaker", "agent")
    await expect(bubbles.nth(1)).to_have_attribute("data-speaker", "caller")
    await expect(bubbles.nth(1).locator("p")).to_have_text("I want a cake")
    await expect(page.get_by_test_id("call-summary")).to_have_text("ordered a cake")
    details = page.get_by_test_id("call-details")
    await expect(details.locator("input[value=Anita]")).to_be_visible()
    await expect(details.locator("input[value=cake]")).to_be_visible()
    sent = page.get_by_test_id("call-messages").get_by_test_id("message-row")
    await expect(sent).to_have_count(2)
    failed = sent.and_(page.locator("[data-status=failed]"))
    delivered = sent.and_(page.locator("[data-status=delivered]"))
    await expect(failed.get_by_test_id("message-status")).to_have_text(re.compile("ailed"))
    await expect(failed.get_by_test_id("resend-button")).to_be_visible()
    await expect(delivered.get_by_test_id("message-status")).to_have_text(re.compile("elivered"))
    await expect(delivered.get_by_test_id("resend-button")).to_have_count(0)
    await expect(page.get_by_test_id("recording-link")).to_have_attribute(
        "href", "https://rec.example/1.mp3"
    )
    # rupees first, dollars beside them: 0.012 USD at the configured 84 ₹/$
    await expect(page.get_by_test_id("call-cost-total")).to_have_text("₹1.01 ($0.012)")


# --- the list -----------------------------------------------------------------------------------


async def apply_filters(page: Page, **values: str) -> None:
    """Open the filters, set each one (`call_type` → filter-type ...) and apply."""
    more = page.get_by_test_id("filters-more")
    if await more.get_attribute("open") is None:
        await more.locator("summary").click()
    names = {"call_type": "filter-type", "status": "filter-status", "sort": "filter-sort"}
    for name, value in values.items():
        field = page.get_by_test_id(names.get(name, f"filter-{name}"))
        if name in names:
            await field.select_option(value)
        else:
            await field.fill(value)
    await more.get_by_role("button", name=re.compile("Apply")).click()


async def test_the_list_filters_searches_pages_and_exports(
    site: Site, phone_page: Page, screenshot: Screenshot, tmp_path: Path
) -> None:
    page = phone_page
    await seed_many(site.db, 60)
    await sign_in(page, site)
    await page.get_by_test_id("nav-calls").click()
    listed = rows(page)
    await expect(listed).to_have_count(50)  # a page; the rest behind "more"
    await assert_fits(page)
    await screenshot(page, "phone-calls")
    await page.get_by_test_id("calls-more").click()
    await expect(listed).to_have_count(67)  # appended in place
    await expect(page.get_by_test_id("calls-more")).to_have_count(0)
    assert len(await sids(page)) == 67

    await apply_filters(page, call_type="custom_cake")
    await expect(listed).to_have_count(1)
    assert await sids(page) == {"CAb-custom"}
    await page.get_by_test_id("filter-clear").click()
    await apply_filters(page, status="failed")
    await expect(listed).to_have_count(1)
    assert await sids(page) == {"CAb-failed"}
    await page.get_by_test_id("filter-clear").click()
    await apply_filters(page, **{"from": "2026-12-01", "to": "2026-12-01"})
    await expect(listed).to_have_count(3)
    assert await sids(page) == {"CAb0", "CAb1", "CAb2"}

    # the CSV follows the filters on screen, through the browser's own download
    async with page.expect_download() as waiting:
        await page.get_by_test_id("calls-csv").click()
    download = await waiting.value
    saved = tmp_path / "calls.csv"
    await download.save_as(saved)
    table = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert table[0][0] == "call_sid"
    assert sorted(r[0] for r in table[1:]) == ["CAb0", "CAb1", "CAb2"]

    await page.get_by_test_id("filter-clear").click()
    for word, expected in (("birthday", {"CAb-custom"}), ("केक", {"CAb-hindi"})):
        await page.get_by_test_id("filter-q").fill(word)
        await page.get_by_test_id("filter-apply").click()
        await expect(listed).to_have_count(len(expected))
        assert await sids(page) == expected, word
        await expect(page.get_by_test_id("filter-q")).to_have_value(word)
    await page.get_by_test_id("filter-q").fill("nothing-like-this")
    await page.get_by_test_id("filter-apply").click()
    await expect(page.get_by_test_id("calls-empty")).to_be_visible()

    await page.goto(site.app("/calls?from=yesterday"))  # a bad filter: a message, not a crash
    await expect(page.locator("[data-testid=page-error][data-code=bad_date]")).to_be_visible()
    await assert_fits(page)


# --- language -----------------------------------------------------------------------------------


async def test_hindi_and_back(site: Site, phone_page: Page, screenshot: Screenshot) -> None:
    page = phone_page
    await sign_in(page, site)
    await expect(page.get_by_test_id("nav-today")).to_have_text("Today")
    await open_menu(page)
    await page.get_by_test_id("lang-hi").click()
    await expect(page.get_by_test_id("nav-today")).to_have_text("आज")
    await expect(page.locator("html")).to_have_attribute("lang", "hi")
    await page.reload()
    await expect(page.get_by_test_id("nav-today")).to_have_text("आज")  # kept by the session
    await expect(page.get_by_test_id("nav-calls")).to_have_text("कॉल")
    await assert_fits(page)
    await screenshot(page, "phone-today-hindi")
    await page.get_by_test_id("nav-calls").click()
    await expect(page.locator("html")).to_have_attribute("lang", "hi")
    await assert_fits(page)

    await open_menu(page)
    await page.get_by_test_id("lang-en").click()
    await expect(page.get_by_test_id("nav-today")).to_have_text("Today")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("lang", "en")


# --- hostile text -------------------------------------------------------------------------------


async def test_hostile_text_is_only_text(site: Site, phone_page: Page) -> None:
    page = phone_page
    dialogs: list[str] = []

    async def refuse(dialog: Dialog) -> None:  # a dialog means seeded text ran as script
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    await seed_call(
        site.db, "CAb-hostile", "bakery", summary=HOSTILE, text=HOSTILE,
        from_number=HOSTILE[:60],
    )  # fmt: skip
    await insert(site.db, new("CAb-hostile", status="failed", error=HOSTILE,
                              details={"text": HOSTILE}))  # fmt: skip
    await sign_in(page, site)
    for path in ("/", "/calls", "/calls/CAb-hostile", "/messages", "/calls?q=DROP+TABLE"):
        await page.goto(site.app(path))
        await expect(page.get_by_test_id("nav")).to_be_visible()
        assert await page.locator("img[src=x]").count() == 0, path
        # the chart's numbers are the only script element in the page's body, and not code
        code = page.locator("main script:not([type='application/json'])")
        assert await code.count() == 0, path
    await expect(page.get_by_test_id("call-list")).to_contain_text("<script>alert(1)</script>")
    await page.goto(site.app("/calls/CAb-hostile"))
    await expect(page.get_by_test_id("call-summary")).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("call-number")).to_have_text(HOSTILE[:60])
    caller = page.get_by_test_id("bubble").and_(page.locator("[data-speaker=caller]"))
    await expect(caller.locator("p")).to_have_text(HOSTILE)
    await page.goto(site.app("/messages"))
    await expect(page.get_by_test_id("message-list")).to_contain_text("onerror=alert(2)")
    assert dialogs == []  # and the `offline` fixture fails the test on any uncaught JS error


# --- the operator -------------------------------------------------------------------------------


async def test_the_operator_switches_tenants(site: Site, desktop_page: Page) -> None:
    page = desktop_page
    await sign_in(page, site, "admin")
    await page.get_by_test_id("nav-calls").click()
    everything = await sids(page)
    assert {"CAs0", "CAb0", "CAb-custom"} <= everything, everything
    await open_menu(page)
    await page.get_by_test_id("tenant-select").select_option("saloon")
    await page.get_by_test_id("tenant-switch").get_by_role("button").click()
    await expect(page).to_have_url(re.compile(r"tenant=saloon"))
    await expect(rows(page)).to_have_count(1)
    assert await sids(page) == {"CAs0"}
    await expect(page.get_by_test_id("who")).to_contain_text("saloon")
    await page.get_by_test_id("nav-today").click()  # the choice follows the links
    await expect(page).to_have_url(re.compile(r"tenant=saloon"))
    await open_menu(page)
    await page.get_by_test_id("tenant-select").select_option("")
    await page.get_by_test_id("tenant-switch").get_by_role("button").click()
    await page.get_by_test_id("nav-calls").click()
    await expect(rows(page)).to_have_count(len(everything))


# --- sessions that end --------------------------------------------------------------------------


async def test_an_ended_session_goes_back_to_sign_in(site: Site, phone_page: Page) -> None:
    page = phone_page
    await sign_in(page, site)
    # the page's live stream is open before the session ends, as when an owner leaves the
    # page open (a stream opened after would meet the ended session first and answer 401)
    await expect(page.get_by_test_id("live-state")).to_have_text("Live")
    async with site.db.session() as conn:
        session_id = (await conn.execute(sa.select(web_sessions.c.id))).scalar_one()
    await expire_session_now(site.db, session_id)
    await page.get_by_test_id("nav-calls").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("login-message")).to_have_text(re.compile("session has ended"))

    # signing in again opens the page that was asked for (Calls); signing out ends the new
    # session
    await page.get_by_test_id("login-key").fill(site.keys["bakery"])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("filter-q")).to_be_visible()
    assert page.url.endswith("/app/calls"), page.url
    await open_menu(page)
    await page.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-message")).to_have_text(re.compile("signed out"))
    await page.goto(site.app("/calls"))
    await expect(page.get_by_test_id("login-form")).to_be_visible()
