"""Bookings out to the owner's Google Calendar: run by the worker beside the pipeline.

One pass: the tenants with `[booking.google_calendar]` push = true; their bookings whose calendar
is not in step (store/calendar_sync.py: confirmed and not in it, or in it and no longer
confirmed); each claimed, then its event put (under the booking's own event id, so a retry after
a lost answer finds the event and replaces it: never two) or deleted, in a thread, under a time
bound. A failure is retried with a backoff doubling from `backoff_base_s` up to `max_attempts`;
its reason stays on the row (`GET /api/v1/bookings/calendar-sync`) and in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from receptionist import loops
from receptionist.gcal.client import (
    BOOKING_PROPERTY,
    CalendarError,
    delete_event,
    event_id_for,
    put_event,
)
from receptionist.store import calendar_sync as store
from receptionist.store.bookings import Booking
from receptionist.store.db import Database
from receptionist.store.schema import utcnow
from receptionist.tenants.calendar_checks import GoogleCalendarSettings
from receptionist.tenants.repository import TenantError, Tenants

__all__ = ["CalendarSync", "event_body"]

log = logging.getLogger("receptionist.gcal")

CALL_TIMEOUT_S = 20.0


def event_body(booking: Booking, timezone: str) -> dict[str, Any]:
    assert booking.starts_at is not None and booking.ends_at is not None
    service = (booking.details or {}).get("service")
    who = booking.customer_name or "Caller"
    summary = f"{who}: {service}" if service else f"{who} (booked by phone)"
    lines = [f"Reference {booking.reference}", f"With {booking.resource}"]
    if booking.customer_phone:
        lines.append(f"Phone {booking.customer_phone}")
    return {
        "id": event_id_for(booking.tenant, booking.reference),
        # an update of an event deleted earlier (a booking confirmed again) brings it back
        "status": "confirmed",
        "summary": summary[:200],
        "description": "\n".join(lines),
        "start": {"dateTime": booking.starts_at.isoformat(), "timeZone": timezone},
        "end": {"dateTime": booking.ends_at.isoformat(), "timeZone": timezone},
        "extendedProperties": {
            "private": {BOOKING_PROPERTY: booking.reference, "receptionist_tenant": booking.tenant}
        },
    }


class CalendarSync:
    def __init__(
        self,
        db: Database,
        tenants: Tenants,
        *,
        max_attempts: int = store.DEFAULT_MAX_ATTEMPTS,
        backoff_base_s: float = 30.0,
        lease_s: float = 120.0,
        batch: int = 8,
        poll_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.tenants = db, tenants
        self.max_attempts, self.backoff_base_s = max_attempts, backoff_base_s
        self.lease_s, self.batch, self.poll_s = lease_s, batch, poll_s
        self.clock = clock
        self.wake = asyncio.Event()
        self.pushed = 0
        self.failures = 0

    def _configured(self) -> dict[str, tuple[GoogleCalendarSettings, str]]:
        """Tenant id -> (its calendar settings, its time zone), for those that push."""
        out: dict[str, tuple[GoogleCalendarSettings, str]] = {}
        for tenant_id in self.tenants.ids():
            try:
                tenant = self.tenants.get(tenant_id)
            except TenantError:
                continue  # inactive or broken: its bookings wait until it is fixed
            booking = tenant.tools.booking
            calendar = booking.google_calendar if booking is not None else None
            if calendar is not None and calendar.push:
                out[tenant_id] = (calendar, tenant.timezone)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        def failed(exc: Exception) -> None:  # the database is away: the next pass tries again
            log.error("calendar sync: pass failed (%s); retrying", exc)

        await loops.poll(
            self.run_once, stop=stop, wake=self.wake, poll_s=self.poll_s, failed=failed
        )

    async def run_once(self) -> int:
        """One batch of due bookings pushed side by side; returns how many were attempted."""
        configured = self._configured()
        now = self.clock()
        items = await store.due(
            self.db,
            list(configured),
            now=now,
            max_attempts=self.max_attempts,
            limit=self.batch,
        )
        done = await asyncio.gather(
            *(self._push(item, *configured[item.booking.tenant]) for item in items)
        )
        return sum(done)

    async def _push(self, item: store.SyncDue, settings: GoogleCalendarSettings, tz: str) -> int:
        booking, now = item.booking, self.clock()
        event_id = event_id_for(booking.tenant, booking.reference)
        calendar_id = (
            settings.calendar_for(booking.resource)
            if item.target == store.EVENT
            else item.calendar_id or settings.calendar_for(booking.resource)
        )
        if not await store.claim(
            self.db, item, event_id=event_id, calendar_id=calendar_id, now=now, lease_s=self.lease_s
        ):
            return 0
        try:
            if item.target == store.EVENT:
                await asyncio.wait_for(
                    asyncio.to_thread(
                        put_event,
                        settings,
                        calendar_id,
                        event_body(booking, tz),
                        timeout_s=CALL_TIMEOUT_S,
                    ),
                    CALL_TIMEOUT_S + 5,
                )
            else:
                await asyncio.wait_for(
                    asyncio.to_thread(
                        delete_event, settings, calendar_id, event_id, timeout_s=CALL_TIMEOUT_S
                    ),
                    CALL_TIMEOUT_S + 5,
                )
        except (CalendarError, TimeoutError) as exc:
            reason = str(exc) or "no answer in time"
            attempts = await store.failed(
                self.db, booking.id, reason, now=self.clock(), base_s=self.backoff_base_s
            )
            self.failures += 1
            gave_up = attempts >= self.max_attempts
            log.log(
                logging.ERROR if gave_up else logging.WARNING,
                "calendar sync: booking %s of %s (%s) failed: %s%s",
                booking.reference,
                booking.tenant,
                item.target,
                reason,
                "; giving up" if gave_up else "",
            )
            return 1
        await store.pushed(self.db, booking.id, item.target, now=self.clock())
        self.pushed += 1
        return 1
