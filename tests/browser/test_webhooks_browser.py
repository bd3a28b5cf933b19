"""The webhook deliveries page in a real Chromium, on the real server app: the owner opens it
from the tabs, sees a delivery its receiver refused with the attempt's answer, filters by
status, replays it with the button (a CSRF-guarded POST), and after the worker's next round sees
the new attempt and the delivery delivered. Another business's deliveries never show.

The receiver is a local double; the deliverer runs in the test, one round at a time, so what the
page shows after each round is decided, not raced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from receptionist.store.db import Database
from receptionist.store.schema import utcnow
from receptionist.store.webhook_deliveries import NewDelivery, insert_deliveries
from tests.browser.dashboard_site import GUARD_S, Site, assert_fits, running_site, sign_in
from tests.browser.harness import Screenshot
from tests.integration.test_webhooks import Clock, Receiver, _deliverer

expect.set_options(timeout=GUARD_S * 1000)


@pytest.fixture
async def site(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(sqlite_db, tmp_path) as running:
        yield running


def _event(tenant: str, call_sid: str, url: str) -> NewDelivery:
    eid = f"ev-{call_sid}"
    payload = {"id": eid, "type": "call.ended", "tenant": tenant, "data": {"call_sid": call_sid}}
    return NewDelivery(eid, "call.ended", tenant, call_sid, url, "BAKERY_HOOK_SECRET", payload)


async def test_a_refused_delivery_is_replayed_from_the_page(
    site: Site, phone_page: Page, screenshot: Screenshot
) -> None:
    page = phone_page
    async with Receiver() as receiver:
        url = f"{receiver.base_url}/hook"
        async with site.db.begin() as conn:
            await insert_deliveries(conn, site.db.dialect, [
                _event("bakery", "CAb0", url), _event("saloon", "CAs0", url),
            ])  # fmt: skip
        receiver.script = [500, 500]
        clock = Clock()
        deliverer = _deliverer(site.db, clock, max_attempts=1)  # one refusal: failed
        try:
            assert await deliverer.run_once() == 2
            await sign_in(page, site)
            await page.get_by_test_id("nav-webhooks").click()
            rows = page.get_by_test_id("delivery-row")
            await expect(rows).to_have_count(1)  # the saloon's is not the bakery's business
            row = rows.first
            await expect(row).to_have_attribute("data-status", "failed")
            await expect(row.get_by_test_id("attempt")).to_have_count(1)
            await expect(row.get_by_test_id("attempt").first).to_have_attribute("data-code", "500")
            await expect(row).to_contain_text("HTTP 500")
            await page.get_by_test_id("webhooks-status").select_option("delivered")
            await page.get_by_test_id("webhooks-filter").get_by_role("button").click()
            await expect(page.get_by_test_id("webhooks-empty")).to_be_visible()
            await page.get_by_test_id("webhooks-status").select_option("failed")
            await page.get_by_test_id("webhooks-filter").get_by_role("button").click()
            await expect(rows).to_have_count(1)
            await assert_fits(page)
            await screenshot(page, "phone-webhooks-failed")
            await rows.first.get_by_test_id("replay-button").click()
            await expect(page.get_by_test_id("notice")).to_be_visible()
            # back on the failed list: the replayed delivery is pending now, so it left it
            await expect(rows).to_have_count(0)
            await page.get_by_test_id("nav-webhooks").click()
            await expect(rows.first).to_have_attribute("data-status", "pending")
            clock.now = utcnow()  # the worker's next round, after the replay: 200
            assert await deliverer.run_once() == 1
        finally:
            await deliverer.aclose()
        await page.reload()
        row = page.get_by_test_id("delivery-row").first
        await expect(row).to_have_attribute("data-status", "delivered")
        attempts = row.get_by_test_id("attempt")
        await expect(attempts).to_have_count(2)
        await expect(attempts.nth(1)).to_have_attribute("data-code", "200")
        await assert_fits(page)
        await screenshot(page, "phone-webhooks-replayed")
    bakery = [e for e in receiver.events() if e["tenant"] == "bakery"]
    assert len(bakery) == 2 and len({e["id"] for e in bakery}) == 1  # sent again, same id
