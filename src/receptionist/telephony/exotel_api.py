"""Exotel Call Details REST API (v1): fetch one call's record after hang-up.

``GET {base}/v1/Accounts/{account_sid}/Calls/{call_sid}.json`` with HTTP Basic auth (API key as
user, API token as password). Without the ``.json`` suffix Exotel answers in XML, so we always
add it. Regions: ``api.exotel.com`` (Singapore) and ``api.in.exotel.com`` (Mumbai).

Checked against developer.exotel.com (voice v1 "Call Details" reference, the StatusCallback
reference, the error-code dictionary) and Exotel support article 56523:

* The body is ``{"Call": {...}}``; the documented keys are ``Sid``, ``ParentCallSid``,
  ``DateCreated``, ``DateUpdated``, ``AccountSid``, ``To``, ``From``, ``PhoneNumberSid``,
  ``Status``, ``StartTime``, ``EndTime``, ``Duration``, ``Price``, ``Direction``,
  ``AnsweredBy``, ``RecordingUrl``; plus ``Details`` with ``?details=true`` (voice v1 "Call
  Details API": ``ConversationDuration`` in whole seconds, ``Leg1Status``, ``Leg2Status``,
  ``Legs`` as ``[{"Leg": {"Id": 1, "OnCallDuration": 21}}, ...]``; nothing in it names the
  number that answered a leg) and
  ``PreSignedRecordingUrl`` when that account feature is on (``RecordingUrlValidity`` query
  parameter, 5-60 minutes). ``ForwardedFrom``, ``CallerName`` and ``Uri`` (Twilio heritage) are
  *not* in the current documented sample; we never rely on them (they stay in ``raw``).
* Numbers are JSON *strings*: ``"Duration": "17"``, ``"Price": "1.500"``. Absent values are
  ``null`` (``ParentCallSid``, ``AnsweredBy`` in the sample); we treat ``""`` the same way.
* Times are ``YYYY-MM-DD HH:mm:ss`` without an offset. The docs do not name the time zone; we
  read them as IST (+05:30), the zone of Exotel's dashboards and of its Indian numbers. The zone
  is a parameter (``ExotelApiConfig.time_zone``) in case a Singapore-cluster account differs.
* ``Status``: queued, ringing, in-progress, completed, failed, busy, no-answer, canceled.
  ``Direction``: inbound, outbound-dial, outbound-api.
* ``Duration``, ``Price``, ``EndTime`` are filled *asynchronously*, about 5 minutes after the
  call ends on average. :attr:`ExotelCallDetails.is_final` tells a settled record from an early
  one (the post-call pipeline polls with back-off until it is settled).
* HTTP errors: 401 bad key/token, 402 balance/plan, 403 account suspended or no permission,
  404 unknown resource, 429 rate limit (200 requests/min per account for voice v1), 5xx.
  Error bodies look like ``{"RestException": {"Status": 401, "Message": "..."}}``.

No settings, no database: plain inputs in, a frozen dataclass out. The API token is never
logged and never part of a ``repr`` or an error message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    from receptionist.config import Settings

import httpx
import orjson

from receptionist.untrusted import clean, without_nul

log = logging.getLogger("receptionist.exotel_api")

IST = timezone(timedelta(hours=5, minutes=30), "IST")

#: Statuses after which the call cannot change any more (the bill may still be pending).
TERMINAL_STATUSES = frozenset({"completed", "failed", "busy", "no-answer", "canceled"})

#: Exotel call sids are "alpha-numeric" (32 hex characters in the docs' examples).
_CALL_SID_RE = re.compile(r"[A-Za-z0-9]{1,128}")
#: Account sids are short words chosen at sign-up (letters, digits, sometimes - or _).
_ACCOUNT_SID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_EXOTEL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_MAX_DETAIL_CHARS = 200

ErrorKind = Literal[
    "auth",
    "not_found",
    "rate_limited",
    "server",
    "timeout",
    "network",
    "bad_response",
    "bad_request",
]

# not_found is retryable on purpose: right after hang-up a sid handed to us by the Voicebot
# stream may not be visible to the REST API yet. Callers should give up after a few minutes.
_RETRYABLE: frozenset[str] = frozenset(
    {"not_found", "rate_limited", "server", "timeout", "network"}
)


class ExotelApiError(Exception):
    """A failed call-details request.

    ``kind`` is a short stable label:

    * ``auth``: 401/402/403, the account or its credentials are refused; needs an operator.
    * ``not_found``: 404. Retryable: shortly after hang-up the call may not be visible yet;
      a sid that stays unknown for minutes is really wrong.
    * ``rate_limited`` (429, ``retry_after_s`` from ``Retry-After`` when sent), ``server``
      (5xx), ``timeout``, ``network``: transient, retry with back-off.
    * ``bad_response``: a 200 whose body is not JSON or has no ``Call`` object, or any other
      unexpected status (3xx). Not retryable.
    * ``bad_request``: an invalid call sid / account sid (rejected before any request is
      made) or a 400/other 4xx from Exotel. Not retryable.
    """

    def __init__(
        self,
        kind: ErrorKind,
        detail: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            f"{kind}: {detail}" if status_code is None else f"{kind} ({status_code}): {detail}"
        )
        self.kind: ErrorKind = kind
        self.detail = detail
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE


@dataclass(frozen=True)
class ExotelApiConfig:
    account_sid: str
    api_key: str
    api_token: str = field(repr=False)
    subdomain: str = "api.exotel.com"
    #: Overrides ``https://{subdomain}``; tests point it at the double
    #: (:class:`receptionist.sim.exotel_api.FakeExotelApi`).
    base_url: str | None = None
    timeout_s: float = 10.0
    #: Zone of the offset-less times in the body (see module docstring).
    time_zone: tzinfo = IST

    @property
    def root(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return "https://" + self.subdomain.lstrip("@").rstrip("/")


def api_config(settings: Settings) -> ExotelApiConfig | None:
    """Exotel's API from the settings; None without the account and its key and token."""
    if not (settings.exotel_account_sid and settings.exotel_api_key and settings.exotel_api_token):
        return None
    return ExotelApiConfig(
        account_sid=settings.exotel_account_sid,
        api_key=settings.exotel_api_key,
        api_token=settings.exotel_api_token.get_secret_value(),
        subdomain=settings.exotel_subdomain,
        base_url=settings.exotel_api_base_url,
    )


@dataclass(frozen=True)
class ExotelLegs:
    """A call's ``Details`` with ``?details=true``: leg 1 is the first party (the caller of an
    inbound call), leg 2 the one connected to it (a Connect applet's person)."""

    conversation_s: int | None  # how long both legs were connected
    leg1_status: str | None
    leg2_status: str | None
    on_call_s: tuple[tuple[int, int | None], ...]  # (leg id, its OnCallDuration)


def _legs(value: Any) -> ExotelLegs | None:
    if not isinstance(value, Mapping):
        return None
    legs: list[tuple[int, int | None]] = []
    raw_legs = value.get("Legs")
    for item in raw_legs[:10] if isinstance(raw_legs, list) else []:  # bounded: from outside
        leg = item.get("Leg") if isinstance(item, Mapping) else None
        if isinstance(leg, Mapping) and (leg_id := _int(leg.get("Id"))) is not None:
            legs.append((leg_id, _int(leg.get("OnCallDuration"))))
    leg1, leg2 = _text(value.get("Leg1Status")), _text(value.get("Leg2Status"))
    return ExotelLegs(
        conversation_s=_int(value.get("ConversationDuration")),
        leg1_status=leg1.lower()[:40] if leg1 else None,
        leg2_status=leg2.lower()[:40] if leg2 else None,
        on_call_s=tuple(legs),
    )


@dataclass(frozen=True)
class ExotelCallDetails:
    sid: str
    from_number: str
    to_number: str
    status: str
    direction: str
    duration_s: int | None
    start_time: datetime | None
    end_time: datetime | None
    recording_url: str | None
    price: Decimal | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    #: ``Details`` (only asked for with ``details=True``); None when absent
    legs: ExotelLegs | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_final(self) -> bool:
        """The call is over *and* Exotel has filled the asynchronous fields (Duration, EndTime).

        Price is not required: it may lag further or stay empty for unbilled calls; see
        :attr:`missing_fields`.
        """
        return self.is_terminal and self.duration_s is not None and self.end_time is not None

    @property
    def missing_fields(self) -> tuple[str, ...]:
        """The asynchronously filled fields still empty (to record, not to block on)."""
        missing = []
        if self.duration_s is None:
            missing.append("duration_s")
        if self.end_time is None:
            missing.append("end_time")
        if self.price is None:
            missing.append("price")
        return tuple(missing)


# ---------------------------------------------------------------- parsing


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return clean(value, 512) or None  # from outside: no control characters, bounded
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def _decimal(value: Any) -> Decimal | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _int(value: Any) -> int | None:
    """A whole, non-negative number (durations), else None."""
    number = _decimal(value)
    if number is None or number != number.to_integral_value() or number < 0:
        return None
    return int(number)


def _time(value: Any, tz: tzinfo) -> datetime | None:
    text = _text(value)
    if text is None or text.startswith("0000-00-00"):
        return None
    try:
        parsed = datetime.strptime(text, _EXOTEL_TIME_FORMAT)
    except ValueError:
        try:  # tolerate an ISO-8601 value, with or without an offset
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def parse_call_details(
    body: bytes | str | Mapping[str, Any], *, tz: tzinfo = IST
) -> ExotelCallDetails:
    """Parse a Call Details JSON body. Raises :class:`ExotelApiError` (``bad_response``) when
    the body is not JSON, or has no ``Call`` object with a ``Sid``. Individual fields that are
    empty, ``null`` or unparsable become ``None`` (the original stays in ``raw``)."""
    if isinstance(body, bytes | str):
        try:
            doc: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ExotelApiError("bad_response", f"body is not JSON ({exc.msg})") from None
    else:
        doc = body
    if not isinstance(doc, Mapping):
        raise ExotelApiError("bad_response", "body is not a JSON object")
    call = doc.get("Call")
    if not isinstance(call, Mapping):
        raise ExotelApiError("bad_response", "body has no 'Call' object")
    sid = _text(call.get("Sid"))
    if sid is None:
        raise ExotelApiError("bad_response", "'Call' has no 'Sid'")
    return ExotelCallDetails(
        sid=sid,
        from_number=_text(call.get("From")) or "",
        to_number=_text(call.get("To")) or "",
        status=(_text(call.get("Status")) or "").lower(),
        direction=(_text(call.get("Direction")) or "").lower(),
        duration_s=_int(call.get("Duration")),
        start_time=_time(call.get("StartTime"), tz),
        end_time=_time(call.get("EndTime"), tz),
        recording_url=_text(call.get("RecordingUrl")),
        price=_decimal(call.get("Price")),
        raw=without_nul(dict(call)),  # kept as sent, but storable in PostgreSQL
        legs=_legs(call.get("Details")),
    )


# ---------------------------------------------------------------- HTTP


def call_details_url(cfg: ExotelApiConfig, call_sid: str) -> str:
    """The request URL (no credentials in it). Raises ``bad_request`` for a malformed sid."""
    if not isinstance(call_sid, str) or not _CALL_SID_RE.fullmatch(call_sid):
        raise ExotelApiError("bad_request", f"invalid call sid {call_sid!r:.60}")
    if not _ACCOUNT_SID_RE.fullmatch(cfg.account_sid):
        raise ExotelApiError("bad_request", f"invalid account sid {cfg.account_sid!r:.60}")
    return f"{cfg.root}/v1/Accounts/{quote(cfg.account_sid, safe='')}/Calls/{call_sid}.json"


def _error_message(response: httpx.Response) -> str:
    """The RestException message if the error body has one, else the reason phrase."""
    try:
        doc = orjson.loads(response.content)
        message = doc["RestException"]["Message"]
        if isinstance(message, str) and message:
            return message[:_MAX_DETAIL_CHARS]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    return response.reason_phrase or "error"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _status_error(response: httpx.Response) -> ExotelApiError:
    code = response.status_code
    message = _error_message(response)
    if code in (401, 402, 403):
        return ExotelApiError("auth", message, status_code=code)
    if code == 404:
        return ExotelApiError("not_found", message, status_code=code)
    if code == 429:
        return ExotelApiError(
            "rate_limited", message, status_code=code, retry_after_s=_retry_after(response)
        )
    if code >= 500:
        return ExotelApiError("server", message, status_code=code)
    if 400 <= code < 500:
        return ExotelApiError("bad_request", message, status_code=code)
    return ExotelApiError("bad_response", f"unexpected HTTP status ({message})", status_code=code)


async def fetch_call_details(
    client: httpx.AsyncClient, cfg: ExotelApiConfig, call_sid: str, *, details: bool = False
) -> ExotelCallDetails:
    """Fetch one call's record (``details``: with its legs, ``?details=true``). Raises
    :class:`ExotelApiError`; see its ``kind``/``retryable``."""
    url = call_details_url(cfg, call_sid)
    started = time.monotonic()
    try:
        response = await client.get(
            url,
            params={"details": "true"} if details else None,
            auth=httpx.BasicAuth(cfg.api_key, cfg.api_token),
            headers={"Accept": "application/json"},
            timeout=cfg.timeout_s,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise ExotelApiError(
            "timeout", f"no answer within {cfg.timeout_s:g}s ({type(exc).__name__})"
        ) from None
    except httpx.TransportError as exc:
        raise ExotelApiError("network", type(exc).__name__) from None
    elapsed_ms = (time.monotonic() - started) * 1000
    log.debug(
        "exotel call details %s: HTTP %d in %.0f ms", call_sid, response.status_code, elapsed_ms
    )
    if response.status_code != 200:
        raise _status_error(response)
    try:
        record = parse_call_details(response.content, tz=cfg.time_zone)
    except ExotelApiError as exc:
        raise ExotelApiError("bad_response", exc.detail, status_code=200) from None
    if record.sid != call_sid:
        raise ExotelApiError(
            "bad_response", f"asked for {call_sid}, got {record.sid!r:.60}", status_code=200
        )
    return record
