# ruff: noqa: F811 - `api` is the fixture imported from test_api
"""Bookings in the API (scoped per tenant like calls) and the owner's .ics feed, whose URL's
secret token is its only credential: a wrong, old or other tenant's token gets nothing."""

from __future__ import annotations

from datetime import timedelta

import icalendar

from receptionist.store import bookings
from receptionist.store.schema import utcnow
from tests.integration.test_api import Api, api  # noqa: F401 - the fixture


async def _hold(api: Api, tenant: str, hours: int, name: str, sid: str) -> str:
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    held = await bookings.hold_slot(
        api.db,
        bookings.SlotHold(
            tenant, "Priya", start, start + timedelta(hours=1), timedelta(minutes=10),
            call_sid=sid, customer_name=name, details={"service": "Haircut"},
        ),
    )  # fmt: skip
    assert held is not None
    return held.reference


async def test_bookings_listed_per_tenant(api: Api) -> None:
    ref = await _hold(api, "saloon", 5, "Meena", "CAs9")
    async with api.client("saloon") as saloon, api.client("bakery") as bakery:
        mine = (await saloon.get("/api/v1/bookings")).json()
        assert ref in [b["reference"] for b in mine]
        assert all(b["tenant"] == "saloon" for b in mine)
        assert (await bakery.get("/api/v1/bookings")).json() == []
        pending = (await saloon.get("/api/v1/bookings", params={"status": "confirmed"})).json()
        assert pending == []
        bad = await saloon.get("/api/v1/bookings", params={"since": "yesterday"})
        assert bad.status_code == 400


async def test_calendar_feed_needs_its_secret(api: Api) -> None:
    ref = await _hold(api, "saloon", 5, "Meena, VIP\r\nX-EVIL:1", "CAs9")
    await bookings.confirm_call(api.db, "CAs9")
    async with api.client("saloon") as saloon, api.client("bakery") as bakery:
        url = (await saloon.post("/api/v1/bookings/calendar")).json()["url"]
        bakery_url = (await bakery.post("/api/v1/bookings/calendar")).json()["url"]
        got = await saloon.get(url)  # any client: the token is the credential
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/calendar")
        cal = icalendar.Calendar.from_ical(got.content)
        events = list(cal.walk("VEVENT"))
        assert [str(e["uid"]) for e in events] == [f"{ref}@saloon.receptionist"]
        assert str(events[0]["status"]) == "CONFIRMED"
        assert "Meena, VIP" in str(events[0]["summary"])
        assert b"\r\nX-EVIL" not in got.content  # a caller's words cannot add a property
        token = url.rsplit("/", 1)[1].removesuffix(".ics")
        wrong = [
            url.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B")),
            url.replace("/saloon/", "/bakery/"),  # the right token, another tenant
            bakery_url.replace("/bakery/", "/saloon/"),  # another tenant's token
            url.replace(token, ""),
            url.replace(token, "x" * 200),
        ]
        for bad in wrong:
            refused = await saloon.get(bad)
            assert refused.status_code in (404, 400), bad
            assert b"VEVENT" not in refused.content
        # a new URL replaces the old one
        await saloon.post("/api/v1/bookings/calendar")
        assert (await saloon.get(url)).status_code == 404


async def test_a_hold_that_ran_out_reads_expired(api: Api) -> None:
    start = utcnow() + timedelta(days=2)
    old = utcnow() - timedelta(hours=1)
    ran_out = await bookings.hold_slot(
        api.db,
        bookings.SlotHold(
            "saloon", "Arun", start, start + timedelta(hours=1), timedelta(minutes=10),
            call_sid="CAold",
        ),
        now=old,
    )  # fmt: skip
    async with api.client("saloon") as saloon:
        rows = (await saloon.get("/api/v1/bookings")).json()
        assert {b["call_sid"]: b["status"] for b in rows}["CAold"] == "expired"
        expired = (await saloon.get("/api/v1/bookings", params={"status": "expired"})).json()
        assert "CAold" in [b["call_sid"] for b in expired]
        assert {b["status"] for b in expired} == {"expired"}
        pending = (await saloon.get("/api/v1/bookings", params={"status": "pending"})).json()
        assert "CAold" not in [b["call_sid"] for b in pending]
        # the feed, by the same definition (store.bookings.live_at), leaves it out
        live = await _hold(api, "saloon", 5, "Meena", "CAlive")
        url = (await saloon.post("/api/v1/bookings/calendar")).json()["url"]
        cal = icalendar.Calendar.from_ical((await saloon.get(url)).content)
        uids = [str(e["uid"]) for e in cal.walk("VEVENT")]
        assert ran_out is not None and uids == [f"{live}@saloon.receptionist"]


async def test_calendar_sync_failures_are_listed_per_tenant(api: Api) -> None:
    from receptionist.store import calendar_sync as sync

    ref = await _hold(api, "saloon", 5, "Meena", "CAs9")
    await bookings.confirm_call(api.db, "CAs9")
    now = utcnow()
    [due] = await sync.due(api.db, ["saloon"], now=now, max_attempts=8)
    assert await sync.claim(api.db, due, event_id="rcp1", calendar_id="c", now=now, lease_s=60)
    await sync.failed(api.db, due.booking.id, "insert event: HTTP 403", now=now, base_s=30)
    async with api.client("saloon") as saloon, api.client("bakery") as bakery:
        [problem] = (await saloon.get("/api/v1/bookings/calendar-sync")).json()
        assert problem["reference"] == ref and problem["last_error"] == "insert event: HTTP 403"
        assert problem["attempts"] == 1 and problem["gave_up"] is False
        assert (await bakery.get("/api/v1/bookings/calendar-sync")).json() == []
