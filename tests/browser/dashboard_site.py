"""The real server (bridge, API and dashboard in one app, as `receptionist serve` runs it) on a
real database with seeded calls, for the dashboard's browser tests; and the few steps those
tests share (signing in, checking that a page fits its screen).

The Gemini Live double answers the calls the simulator places. Its script stops both replies at
a `Hold` the test releases, so a call stays in progress, at a known point of its conversation,
for as long as the test looks at the page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.store.api_keys import create_key
from receptionist.store.db import Database
from receptionist.store.exotel_details import upsert_exotel_details
from receptionist.store.live import LiveFeed, PostgresLiveFeed, Subscription
from receptionist.store.schema import call_details
from tests.integration.bridge_harness import Bridge, running_bridge
from tests.integration.test_api import T0, seed_call
from tests.integration.test_notifications import insert, new

KOLKATA = ZoneInfo("Asia/Kolkata")  # the seeded tenants' time zone
GUARD_S = 20.0  # a bound on every wait for the server or the page: reaching it is a failure

# What the simulated caller says and what the double answers (the live test reads these back
# from the page).
ASKED = ("Do you have eggless cakes?", "One kilo truffle, please.")
ANSWERED = ("Yes, all our cakes are eggless.", "Done, see you at five!")

HINDI = "नमस्ते, मुझे दो किलो चॉकलेट केक चाहिए। क्या आप कल डिलीवरी करेंगे?"
HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'; DROP TABLE call_details;--"


@dataclass
class Site:
    url: str  # http://127.0.0.1:PORT, the server's root; the dashboard is under /app
    db: Database
    bridge: Bridge
    keys: dict[str, str]  # bakery, saloon, admin
    #: the double stops its first reply at holds[0] and its second at holds[1]
    holds: tuple[Hold, Hold] = field(default_factory=lambda: (Hold(), Hold()))

    def app(self, path: str = "/") -> str:
        return f"{self.url}/app{path}"


async def seed(db: Database) -> None:
    """Calls of two tenants over several days, with kinds, a failed call, a Hindi transcript,
    messages in several states and one Exotel record."""
    # "today" on the Today page is the tenant's day (Kolkata): just after its midnight, five
    # minutes ago would be yesterday
    midnight = datetime.now(KOLKATA).replace(hour=0, minute=0, second=0, microsecond=0)
    now = max(datetime.now(UTC) - timedelta(minutes=5), midnight.astimezone(UTC))
    for i in range(3):
        await seed_call(db, f"CAb{i}", "bakery", at=T0 + timedelta(minutes=i))
    await seed_call(db, "CAb-today", "bakery", at=now, summary="two brownies today")
    await seed_call(
        db, "CAb-custom", "bakery", at=T0 - timedelta(days=1), call_type="custom_cake",
        summary="a tractor cake", text="Can you make a birthday cake shaped like a tractor?",
        from_number="+919811100011",
    )  # fmt: skip
    await seed_call(
        db, "CAb-hindi", "bakery", at=T0 - timedelta(days=1, hours=2), text=HINDI,
        summary="chocolate cake, delivery tomorrow", from_number="+919811100022",
    )  # fmt: skip
    await seed_call(
        db, "CAb-failed", "bakery", at=T0 - timedelta(days=2), stage="failed", call_type=None,
        text="Hello? Is anyone there?", summary="",
    )  # fmt: skip
    await seed_call(
        db, "CAs0", "saloon", summary="haircut at 5", text="a haircut please",
        from_number="+917700000077", at=now,
    )  # fmt: skip
    async with db.begin() as conn:
        await conn.execute(  # the caller heard the agent: answered
            sa.update(call_details)
            .where(call_details.c.call_sid == "CAb-today")
            .values(answered_at=now + timedelta(seconds=1))
        )
        await conn.execute(  # the line dropped: a call that failed, for the status filter
            sa.update(call_details)
            .where(call_details.c.call_sid == "CAb-failed")
            .values(status="failed")
        )
        await upsert_exotel_details(
            conn, call_sid="CAb0", tenant="bakery",
            values={"call_status": "completed", "call_duration": 40,
                    "recording_url": "https://rec.example/1.mp3"},
        )  # fmt: skip
    await insert(
        db,
        new("CAb0", status="failed", error="400 bad template"),
        new("CAb0", to="customer", template="order_confirmation", status="delivered",
            recipient="919800000042", details={"text": "Thank you Anita, your cake is noted"}),
        new("CAb-today", template="complaint", urgent=True, status="delivered"),
        new("CAs0", to="customer", template="booking", status="failed", tenant="saloon",
            recipient="917700000077", details={"text": "your haircut booking"}),
    )  # fmt: skip


async def seed_many(db: Database, count: int) -> None:
    """`count` older calls, for paging."""
    for i in range(count):
        at = T0 - timedelta(days=5, minutes=i)
        await seed_call(db, f"CAp{i:02d}", "bakery", at=at, summary=f"older order {i}")


def live_script(holds: tuple[Hold, Hold]) -> CallScript:
    return CallScript(
        turns=[
            ScriptedTurn(heard=ASKED[0], reply=ANSWERED[0], hold=holds[0]),
            ScriptedTurn(heard=ASKED[1], reply=ANSWERED[1], hold=holds[1]),
        ]
    )


@contextlib.asynccontextmanager
async def running_site(db: Database, tmp_path: Path) -> AsyncIterator[Site]:
    await seed(db)
    keys = {
        "bakery": (await create_key(db, tenant="bakery"))[1],
        "saloon": (await create_key(db, tenant="saloon"))[1],
        "admin": (await create_key(db, tenant=None, name="operator"))[1],
    }
    holds = (Hold(), Hold())
    async with (
        FakeGeminiLive(script=live_script(holds)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        live = bridge.ctx.live
        if isinstance(live, PostgresLiveFeed):  # LISTEN is up before any page listens
            await asyncio.wait_for(live.connected.wait(), GUARD_S)
        yield Site(f"http://127.0.0.1:{bridge.port}", db, bridge, keys, holds)


def watch_subscriptions(live: LiveFeed, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set each time someone (a page's event stream) subscribes to `live`: the test
    places its call once the page listens, instead of hoping it already does (the browser's
    `open` comes with the response's headers, which may leave before the subscription)."""
    subscribed = asyncio.Event()
    original = live.subscribe

    @contextlib.asynccontextmanager
    async def watched(tenant: str | None) -> AsyncIterator[Subscription]:
        async with original(tenant) as subscription:
            subscribed.set()
            yield subscription

    monkeypatch.setattr(live, "subscribe", watched)
    return subscribed


async def sign_in(page: Page, site: Site, who: str = "bakery") -> None:
    """Through the sign-in form, as the owner does; ends on the Today page."""
    await page.goto(site.app("/login"))
    await page.get_by_test_id("login-key").fill(site.keys[who])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("today-cards")).to_be_visible()


async def open_menu(page: Page) -> None:
    menu = page.get_by_test_id("menu")
    if await menu.get_attribute("open") is None:
        await menu.locator("summary").click()
    await expect(page.get_by_test_id("logout")).to_be_visible()


async def assert_fits(page: Page) -> None:
    """Nothing on the page is wider than the screen: no sideways scrolling."""
    sizes = await page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth, location.pathname]"
    )
    scroll_width, inner_width, where = sizes
    assert scroll_width <= inner_width, f"{where} scrolls sideways: {scroll_width} > {inner_width}"
