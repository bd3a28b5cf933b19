"""A tenant's settings edited in a real Chromium (tenants kept in the database): a bad value is
refused with its message beside the field, fixed and saved; the versions list shows who changed
what and one click restores the first version; a test call with typed lines shows the
assistant's replies and what the call was. Every wait is on the page (Playwright's `expect`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from receptionist.store.db import Database
from tests.browser.dashboard_site import GUARD_S, assert_fits
from tests.browser.harness import NewPage, Screenshot
from tests.integration.test_dashboard_tenants import Site, settings_site

expect.set_options(timeout=GUARD_S * 1000)


@pytest.fixture
async def site(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    async with settings_site(sqlite_db, tmp_path) as running:
        yield running


async def sign_in(page: Page, site: Site, who: str) -> None:
    await page.goto(f"{site.url}/app/login")
    await page.get_by_test_id("login-key").fill(site.keys[who])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("nav-settings")).to_be_visible()


async def test_edit_error_fix_save_versions_restore_and_test_call(
    site: Site, phone_page: Page, screenshot: Screenshot
) -> None:
    page = phone_page
    await sign_in(page, site, "bakery")
    await page.get_by_test_id("nav-settings").click()
    phone = page.get_by_test_id("field-business.owner_phone")
    await expect(phone).to_have_value("+919800000001")
    await assert_fits(page)  # every form, the call types' rows too, fits a phone

    # a bad number: refused, the message beside the field, the typed value kept
    await phone.fill("call me later")
    await page.get_by_test_id("save-business").click()
    error = page.get_by_test_id("error-business.owner_phone")
    await expect(error).to_be_visible()
    await expect(page.get_by_test_id("save-refused")).to_be_visible()
    await expect(page.get_by_test_id("field-business.owner_phone")).to_have_value("call me later")
    await screenshot(page, "settings-error-beside-field")
    assert await site.tenants.at_version("bakery", 1)  # still the only version
    assert site.tenants.get("bakery").version == 1

    # fixed and saved
    await page.get_by_test_id("field-business.owner_phone").fill("+919800000002")
    await page.get_by_test_id("save-business").click()
    await expect(page.get_by_test_id("notice")).to_contain_text("Saved as a new version")
    await expect(page.get_by_test_id("tenant-version")).to_contain_text("Version 2")
    assert site.tenants.get("bakery").owner_phone == "+919800000002"

    # the versions: who changed what; one click restores the first
    await page.get_by_test_id("versions-link").click()
    rows = page.get_by_test_id("version-row")
    await expect(rows).to_have_count(2)
    await expect(rows.first.get_by_test_id("version-note")).to_have_text("tenant.toml: owner_phone")
    await expect(rows.first.get_by_test_id("version-author")).to_contain_text("Owner")
    await page.get_by_test_id("restore-1").click()
    await expect(page.get_by_test_id("notice")).to_contain_text("in force again")
    await expect(rows).to_have_count(3)
    await expect(page.locator("[data-in-force]")).to_have_attribute("data-version", "3")
    assert site.tenants.get("bakery").owner_phone == "+919800000001"
    await screenshot(page, "settings-versions")

    # a test call against the version in force
    await page.goto(f"{site.url}/app/tenants/bakery/test-call")
    await page.get_by_test_id("test-lines").fill(
        "Hi, I want to order a Black Forest cake 1 kg\nMy name is Ravi\nPickup tomorrow please"
    )
    await page.get_by_test_id("test-call-button").click()
    await expect(page.get_by_test_id("test-result")).to_be_visible()
    turns = page.get_by_test_id("test-turn")
    await expect(turns.first).to_have_attribute("data-speaker", "agent")
    await expect(page.locator('[data-testid="test-turn"][data-speaker="caller"]')).to_have_count(3)
    await expect(page.get_by_test_id("test-call-type")).to_have_text("order")
    await screenshot(page, "settings-test-call")


async def test_a_second_editor_is_told_and_keeps_their_text(
    site: Site, new_page: NewPage, screenshot: Screenshot
) -> None:
    first, second = await new_page("desktop"), await new_page("desktop")
    await sign_in(first, site, "bakery")
    await sign_in(second, site, "admin")
    for p in (first, second):
        await p.goto(f"{site.url}/app/tenants/bakery")
    await second.get_by_test_id("field-business.name").fill("Crumbs by the Operator")
    await second.get_by_test_id("save-business").click()
    await expect(second.get_by_test_id("notice")).to_be_visible()
    await first.get_by_test_id("field-business.name").fill("Crumbs by the Owner")
    await first.get_by_test_id("save-business").click()
    await expect(first.get_by_test_id("conflict")).to_be_visible()
    await expect(first.get_by_test_id("field-business.name")).to_have_value("Crumbs by the Owner")
    await screenshot(first, "settings-conflict")
    await first.get_by_test_id("conflict-reload").click()
    await expect(first.get_by_test_id("field-business.name")).to_have_value(
        "Crumbs by the Operator"
    )
