"""The few Google Calendar calls the bookings need, through Google's own client
(`google-api-python-client`, `google-auth`: the `calendar` extra), blocking: callers run them in
a thread (asyncio.to_thread) under their own time bound.

Credentials: the tenant's `credentials_env` names an environment variable holding a service
account's JSON key, or the path to the file. Its content is never logged nor put in an error;
an error names only the variable. The credentials (and so their access token) are kept per key,
so a token is fetched once an hour, not per request. `GOOGLE_CALENDAR_API_URL` points the client
elsewhere than Google (the tests' double, receptionist.sim.google_calendar).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from receptionist.tenants.calendar_checks import GoogleCalendarSettings

__all__ = [
    "BusyPeriod",
    "CalendarError",
    "delete_event",
    "event_id_for",
    "list_busy",
    "put_event",
]

SCOPE = "https://www.googleapis.com/auth/calendar"
DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3/"
API_URL_ENV = "GOOGLE_CALENDAR_API_URL"
MAX_KEY_BYTES = 64 * 1024
MAX_PAGES = 4  # 1,000 events in a window is plenty; more are not read
#: the private extended property that marks an event as one of our bookings
BOOKING_PROPERTY = "receptionist_booking"


class CalendarError(Exception):
    """The calendar could not be used; the message is safe to log (never a key)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BusyPeriod:
    start: datetime  # aware
    end: datetime


def event_id_for(tenant: str, reference: str) -> str:
    """The booking's event id, the same on every attempt (so a retry never makes a second event):
    Google allows base32hex letters (a-v, 0-9), 5 to 1024 of them; hex digits are among them."""
    return "rcp" + hashlib.sha256(f"{tenant}/{reference}".encode()).hexdigest()[:40]


def _key_info(env_name: str) -> dict[str, Any]:
    raw = os.environ.get(env_name, "").strip()
    if not raw:
        raise CalendarError(f"{env_name} is not set (the service account's key for the calendar)")
    if not raw.startswith("{"):
        try:
            path = Path(raw)
            if path.stat().st_size > MAX_KEY_BYTES:
                raise CalendarError(f"the file {env_name} names is too big for a key")
            raw = path.read_text(encoding="utf-8")
        except OSError:
            raise CalendarError(f"the key file {env_name} names cannot be read") from None
    try:
        info = json.loads(raw)
    except ValueError:
        raise CalendarError(f"{env_name} is not a service account's JSON key") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise CalendarError(f"{env_name} is not a service account's JSON key")
    return info


_CREDENTIALS: dict[str, Any] = {}
_LOCK = threading.Lock()
_DISCOVERY: dict[str, str] = {}


def _credentials(env_name: str) -> Any:
    try:
        from google.oauth2 import service_account
    except ImportError:
        raise CalendarError("google-auth is not installed (the `calendar` extra)") from None

    info = _key_info(env_name)
    fingerprint = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    with _LOCK:
        creds = _CREDENTIALS.get(fingerprint)
        if creds is None:
            try:
                creds = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
            except (ValueError, KeyError):
                raise CalendarError(f"{env_name} is not a usable service account key") from None
            if len(_CREDENTIALS) > 64:
                _CREDENTIALS.clear()
            _CREDENTIALS[fingerprint] = creds
    return creds


def _service(settings: GoogleCalendarSettings, timeout_s: float) -> Any:
    """A calendar service on a fresh HTTP connection (httplib2's are not shared by threads)."""
    try:
        import google_auth_httplib2
        import httplib2
        from googleapiclient import discovery
    except ImportError:
        raise CalendarError("Google's client is not installed (the `calendar` extra)") from None

    with _LOCK:
        doc = _DISCOVERY.get("calendar")
        if doc is None:  # the copy shipped with the client: no discovery request, ever
            doc = _DISCOVERY["calendar"] = _static_document()
    http = google_auth_httplib2.AuthorizedHttp(
        _credentials(settings.credentials_env), http=httplib2.Http(timeout=max(1, int(timeout_s)))
    )
    return discovery.build_from_document(
        doc,
        http=http,
        client_options={"api_endpoint": os.environ.get(API_URL_ENV) or DEFAULT_API_URL},
    )


def _static_document() -> str:
    from googleapiclient import discovery_cache

    text = discovery_cache.get_static_doc("calendar", "v3")
    if text is None:
        raise CalendarError("the calendar's discovery document is not installed")
    return str(text)


def _call(request: Any, what: str) -> Any:
    from googleapiclient.errors import HttpError

    try:
        return request.execute(num_retries=0)
    except HttpError as exc:
        status = int(getattr(exc.resp, "status", 0) or 0)
        raise CalendarError(f"{what}: HTTP {status}", status=status) from None
    except CalendarError:
        raise
    except Exception as exc:  # refused token, lost connection, timeout: all "not now"
        raise CalendarError(f"{what}: {type(exc).__name__}") from None


def put_event(
    settings: GoogleCalendarSettings, calendar_id: str, body: dict[str, Any], *, timeout_s: float
) -> None:
    """Insert the event under its own id; if that id is taken (a retry after an insert whose
    answer was lost, or an event deleted earlier), replace it: one event either way."""
    events = _service(settings, timeout_s).events()
    try:
        _call(events.insert(calendarId=calendar_id, body=body), "insert event")
    except CalendarError as exc:
        if exc.status != 409:
            raise
        _call(events.update(calendarId=calendar_id, eventId=body["id"], body=body), "update event")


def delete_event(
    settings: GoogleCalendarSettings, calendar_id: str, event_id: str, *, timeout_s: float
) -> None:
    """Delete the event; one already gone (404, 410) is what was wanted."""
    events = _service(settings, timeout_s).events()
    try:
        _call(events.delete(calendarId=calendar_id, eventId=event_id), "delete event")
    except CalendarError as exc:
        if exc.status not in (404, 410):
            raise


def _moment(side: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(side, dict):
        return None
    try:
        if isinstance(side.get("dateTime"), str):
            at = datetime.fromisoformat(side["dateTime"])
            return at if at.tzinfo else at.replace(tzinfo=zone)
        if isinstance(side.get("date"), str):  # an all-day event: the whole day, in our zone
            return datetime.combine(date.fromisoformat(side["date"]), time(0), zone)
    except ValueError:
        return None
    return None


def busy_of(items: Any, zone: ZoneInfo) -> list[BusyPeriod]:
    """The owner's busy times among listed events: not our own bookings (the database has
    them), not cancelled, not marked "free" (transparent); malformed ones are skipped."""
    out: list[BusyPeriod] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("status") == "cancelled":
            continue
        if item.get("transparency") == "transparent":
            continue
        extended = item.get("extendedProperties")
        private = extended.get("private") if isinstance(extended, dict) else None
        if isinstance(private, dict) and BOOKING_PROPERTY in private:
            continue
        start, end = _moment(item.get("start"), zone), _moment(item.get("end"), zone)
        if start is not None and end is not None and end > start:
            out.append(BusyPeriod(start, min(end, start + timedelta(days=366))))
    return out


def list_busy(
    settings: GoogleCalendarSettings,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    timeout_s: float,
) -> dict[str, list[BusyPeriod]]:
    """Each of the tenant's calendars: the owner's busy times between `start` and `end`."""
    events = _service(settings, timeout_s).events()
    out: dict[str, list[BusyPeriod]] = {}
    for calendar_id in settings.calendar_ids:
        periods: list[BusyPeriod] = []
        page: str | None = None
        for _ in range(MAX_PAGES):
            answer = _call(
                events.list(
                    calendarId=calendar_id,
                    timeMin=start.isoformat(),
                    timeMax=end.isoformat(),
                    singleEvents=True,
                    maxResults=250,
                    pageToken=page,
                ),
                "list events",
            )
            if not isinstance(answer, dict):
                break
            periods.extend(busy_of(answer.get("items"), zone))
            page = answer.get("nextPageToken")
            if not isinstance(page, str) or not page:
                break
        out[calendar_id] = periods
    return out
