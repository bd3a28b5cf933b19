"""parse_call_details and ExotelCallDetails rules, from bodies in Exotel's documented shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from receptionist.telephony.exotel_api import (
    IST,
    ExotelApiConfig,
    ExotelApiError,
    call_details_url,
    parse_call_details,
)


def _call(**overrides: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "Sid": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "ParentCallSid": None,
        "DateCreated": "2025-03-03 10:48:33",
        "DateUpdated": "2025-03-03 10:53:33",
        "AccountSid": "sharmaclinic1",
        "To": "08047112233",
        "From": "09876543210",
        "PhoneNumberSid": "08047112233",
        "Status": "completed",
        "StartTime": "2025-03-03 10:48:33",
        "EndTime": "2025-03-03 10:49:50",
        "Duration": "77",
        "Price": "1.500",
        "Direction": "inbound",
        "AnsweredBy": None,
        "RecordingUrl": "https://recordings.example/a1b2.mp3",
    }
    call.update(overrides)
    return call


def _body(**overrides: Any) -> bytes:
    return orjson.dumps({"Call": _call(**overrides)})


def test_documented_shape_numbers_as_strings_times_in_ist() -> None:
    d = parse_call_details(_body())
    assert d.sid == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert (d.from_number, d.to_number) == ("09876543210", "08047112233")
    assert (d.status, d.direction) == ("completed", "inbound")
    assert d.duration_s == 77
    assert d.price == Decimal("1.500")
    assert d.recording_url == "https://recordings.example/a1b2.mp3"
    assert d.start_time == datetime(2025, 3, 3, 10, 48, 33, tzinfo=IST)
    assert d.start_time is not None and d.start_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert d.end_time == datetime(2025, 3, 3, 5, 19, 50, tzinfo=UTC)  # same instant
    assert d.raw["PhoneNumberSid"] == "08047112233"
    assert d.is_final
    assert d.missing_fields == ()


def test_str_and_dict_inputs_and_extra_fields_kept_in_raw() -> None:
    extra = {"Uri": "/v1/Accounts/x/Calls/y", "ForwardedFrom": None, "CallerName": None}
    as_str = parse_call_details(_body(**extra).decode())
    as_dict = parse_call_details({"Call": _call(**extra)})
    assert as_str == as_dict
    assert as_dict.raw["Uri"] == "/v1/Accounts/x/Calls/y"


def test_other_time_zone_and_iso_times() -> None:
    sgt = timezone(timedelta(hours=8))
    d = parse_call_details(_body(), tz=sgt)
    assert d.start_time == datetime(2025, 3, 3, 10, 48, 33, tzinfo=sgt)
    iso = parse_call_details(_body(StartTime="2025-03-03T05:18:33+00:00"))
    assert iso.start_time == datetime(2025, 3, 3, 10, 48, 33, tzinfo=IST)


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_empty_async_fields_are_none_and_not_final(empty: str | None) -> None:
    d = parse_call_details(_body(Duration=empty, EndTime=empty, Price=empty, RecordingUrl=empty))
    assert (d.duration_s, d.end_time, d.price, d.recording_url) == (None, None, None, None)
    assert d.status == "completed"
    assert d.is_terminal and not d.is_final
    assert d.missing_fields == ("duration_s", "end_time", "price")


def test_missing_keys_and_junk_values_become_none() -> None:
    call = {"Sid": "abc123", "Duration": "seventeen", "Price": "n/a", "StartTime": "yesterday"}
    d = parse_call_details({"Call": call})
    assert (d.from_number, d.to_number, d.status, d.direction) == ("", "", "", "")
    assert (d.duration_s, d.price, d.start_time) == (None, None, None)
    assert parse_call_details(_body(EndTime="0000-00-00 00:00:00")).end_time is None
    assert parse_call_details(_body(Duration="-3")).duration_s is None
    assert parse_call_details(_body(Duration=12)).duration_s == 12  # a JSON number is fine too
    assert parse_call_details(_body(Status="Completed")).status == "completed"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<?xml version='1.0'?><TwilioResponse><Call/></TwilioResponse>",
        b'{"Call": {"Sid": "trunc',
        b"[]",
        b'{"RestException": {"Status": 404, "Message": "not found"}}',
        b'{"Call": null}',
        b'{"Call": {"Status": "completed"}}',
        b'{"Call": {"Sid": ""}}',
    ],
)
def test_body_without_call_is_bad_response(body: bytes) -> None:
    with pytest.raises(ExotelApiError) as info:
        parse_call_details(body)
    assert info.value.kind == "bad_response"
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("status", "duration", "end", "final"),
    [
        ("completed", "30", "2025-03-03 10:49:50", True),
        ("failed", "0", "2025-03-03 10:49:50", True),
        ("busy", "0", "2025-03-03 10:49:50", True),
        ("no-answer", "0", "2025-03-03 10:49:50", True),
        ("canceled", "0", "2025-03-03 10:49:50", True),
        ("in-progress", "30", "2025-03-03 10:49:50", False),
        ("ringing", None, None, False),
        ("queued", None, None, False),
        ("completed", None, "2025-03-03 10:49:50", False),
        ("completed", "30", None, False),
    ],
)
def test_is_final(status: str, duration: str | None, end: str | None, final: bool) -> None:
    d = parse_call_details(_body(Status=status, Duration=duration, EndTime=end))
    assert d.is_final is final


def test_price_not_required_for_final() -> None:
    d = parse_call_details(_body(Price=None))
    assert d.is_final
    assert d.missing_fields == ("price",)


def test_error_retryable_rules() -> None:
    kinds = {
        "auth": False,
        "bad_response": False,
        "bad_request": False,
        "not_found": True,
        "rate_limited": True,
        "server": True,
        "timeout": True,
        "network": True,
    }
    for kind, retryable in kinds.items():
        assert ExotelApiError(kind, "x").retryable is retryable  # type: ignore[arg-type]


def test_url_and_sid_validation_and_token_not_in_repr() -> None:
    cfg = ExotelApiConfig("sharmaclinic1", "KEY", "s3cr3t-token", subdomain="api.in.exotel.com")
    assert call_details_url(cfg, "abc123") == (
        "https://api.in.exotel.com/v1/Accounts/sharmaclinic1/Calls/abc123.json"
    )
    assert "s3cr3t-token" not in repr(cfg)
    other = ExotelApiConfig("acc", "k", "t", base_url="http://127.0.0.1:9/")
    assert call_details_url(other, "X1").startswith("http://127.0.0.1:9/v1/Accounts/acc/Calls/")
    for bad in ["", "../x", "a/b", "abc.json", "abc?x=1", "abc#", "ab cd", "a%2Fb", "ab\n"]:
        with pytest.raises(ExotelApiError) as info:
            call_details_url(cfg, bad)
        assert info.value.kind == "bad_request"
    with pytest.raises(ExotelApiError):
        call_details_url(ExotelApiConfig("a/../b", "k", "t"), "abc")


def test_hostile_values_are_cleaned_and_raw_is_storable() -> None:
    details = parse_call_details(
        {
            "Call": _call(
                From="0987\x006543210\r\n",
                RecordingUrl="https://x/\x1b[2J" + "a" * 2000,
                Extra={"note\x00": ["a\x00b", 1]},
            )
        }
    )
    assert details.from_number == "09876543210"
    assert details.recording_url is not None and "\x1b" not in details.recording_url
    assert len(details.recording_url) == 512
    assert details.raw["From"] == "09876543210\r\n"  # as sent, minus what PostgreSQL refuses
    assert details.raw["Extra"] == {"note": ["ab", 1]}


def test_the_legs_of_details_true() -> None:
    """`Details` as the v1 Call Details reference shows it with `?details=true`."""
    doc = {
        "Call": {
            "Sid": "CAlegs",
            "Status": "completed",
            "Details": {
                "ConversationDuration": 8,
                "Leg1Status": "completed",
                "Leg2Status": "Completed",
                "Legs": [
                    {"Leg": {"Id": 1, "OnCallDuration": 21}},
                    {"Leg": {"Id": 2, "OnCallDuration": "8"}},
                ],
            },
        }
    }
    legs = parse_call_details(doc).legs
    assert legs is not None
    assert (legs.conversation_s, legs.leg1_status, legs.leg2_status) == (
        8,
        "completed",
        "completed",
    )
    assert legs.on_call_s == ((1, 21), (2, 8))
    assert parse_call_details({"Call": {"Sid": "CAno"}}).legs is None  # not asked for


@pytest.mark.parametrize(
    "details",
    [
        "not a table",
        {"Legs": "nope", "ConversationDuration": -3},
        {"Legs": [None, {"Leg": "x"}, {"Leg": {"Id": "one"}}, *([{"Leg": {"Id": 9}}] * 50)]},
        {"Leg2Status": "x" * 5000, "ConversationDuration": "1.5"},
    ],
)
def test_hostile_details_are_bounded(details: Any) -> None:
    legs = parse_call_details({"Call": {"Sid": "CAbad", "Details": details}}).legs
    assert legs is None or (
        len(legs.on_call_s) <= 10
        and all(isinstance(i, int) for i, _ in legs.on_call_s)
        and (legs.leg2_status is None or len(legs.leg2_status) <= 40)
        and legs.conversation_s is None
    )
