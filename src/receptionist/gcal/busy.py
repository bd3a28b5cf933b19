"""The owner's busy times for the tools, within a bound and cached briefly per tenant.

A call must never wait on Google: a look-up runs in a thread and is awaited at most `timeout_s`;
past that (or on any failure) the tool answers from our database alone and says so. The fetch
goes on in its thread and fills the cache for the next question. One fetch covers a window of
days, so the questions of one call (and of the tenant's other callers) share it for `TTL_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from receptionist.gcal.client import BusyPeriod, CalendarError, list_busy
from receptionist.tenants.calendar_checks import GoogleCalendarSettings

__all__ = ["BusyTimes", "CalendarUnavailable", "busy_times", "clear_cache"]

log = logging.getLogger("receptionist.gcal")

TTL_S = 60.0
TIMEOUT_S = 0.8  # inside the tool's own 2 s bound, with room for the database after it
WINDOW = timedelta(days=9)  # a slot's day and the week of alternatives after it
MAX_ENTRIES = 256


class CalendarUnavailable(Exception):
    """The owner's calendar could not be read in time; the reason is safe to log."""


class BusyTimes:
    def __init__(self, periods: dict[str, list[BusyPeriod]], settings: GoogleCalendarSettings):
        self._periods = periods
        self._settings = settings

    def blocks(self, resource: str, start: datetime, end: datetime) -> bool:
        """Does an owner's event overlap this resource's slot?"""
        calendar = self._settings.calendar_for(resource)
        return any(p.start < end and p.end > start for p in self._periods.get(calendar, ()))


_CACHE: dict[tuple[str, GoogleCalendarSettings, datetime], tuple[float, asyncio.Task]] = {}


def clear_cache() -> None:
    _CACHE.clear()


def _window_start(at: datetime) -> datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=1)


async def busy_times(
    tenant: str,
    settings: GoogleCalendarSettings,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    timeout_s: float = TIMEOUT_S,
) -> BusyTimes:
    """The busy times between `start` and `end` (at most a week apart), or CalendarUnavailable."""
    lo = _window_start(start)
    if end > lo + WINDOW:
        raise CalendarUnavailable("the window asked for is longer than a fetch covers")
    key = (tenant, settings, lo)
    now = time.monotonic()
    entry = _CACHE.get(key)
    if entry is None or entry[0] < now or not _usable(entry[1]):
        if len(_CACHE) >= MAX_ENTRIES:
            _CACHE.clear()
        task = asyncio.ensure_future(
            asyncio.to_thread(list_busy, settings, lo, lo + WINDOW, zone, timeout_s=5.0)
        )
        task.add_done_callback(_quiet)
        entry = _CACHE[key] = (now + TTL_S, task)
    try:
        periods = await asyncio.wait_for(asyncio.shield(entry[1]), timeout_s)
    except TimeoutError:
        raise CalendarUnavailable(f"no answer in {timeout_s:g}s") from None
    except CalendarError as exc:
        raise CalendarUnavailable(str(exc)) from None
    return BusyTimes(periods, settings)


def _usable(task: asyncio.Task) -> bool:
    """A fetch under way or done well, on this event loop (a failed one is asked again)."""
    if task.get_loop() is not asyncio.get_running_loop():
        return False
    return not task.done() or (not task.cancelled() and task.exception() is None)


def _quiet(task: asyncio.Task) -> None:
    """A fetch nobody waited for to its end: its failure is logged, not left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("owner's calendar not read: %s", task.exception())
