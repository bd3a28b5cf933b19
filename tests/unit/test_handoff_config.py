"""tenant.toml's `[handoff]` and `[callbacks]`: what a good table gives, and what each mistake
says (with its line)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from receptionist.bridge.connect_url import connect_answer
from receptionist.tenants.hours import parse_hours_line
from receptionist.tenants.loading import load_tenant
from tests.unit.test_tenants import MINIMAL_TOML, make_tenant

IST = ZoneInfo("Asia/Kolkata")

GOOD = """
[handoff]
numbers = ["+91 98000 00001", "+919800000002"]
hours = ["mon-fri 10:00-19:00", "sat 10:00-14:00"]
ring_seconds = 20
record = true
whisper = "A caller from the receptionist"
caller_id = "08047112233"
notify_template = "owner_handoff"

[callbacks]
caller_id = "08047112233"
per_number_per_day = 1

[templates.owner_handoff]
language = "en"
text = "{{1}} wanted a person at {{2}}: {{3}}"
"""


def load(tmp_path: Path, extra: str, call_types: str = "") -> tuple[object, list[str]]:
    make_tenant(tmp_path, "shop", MINIMAL_TOML + call_types + extra)
    tenant, problems = load_tenant(tmp_path, "shop")
    return tenant, [str(p) for p in problems]


def test_a_good_handoff_and_callbacks_table(tmp_path: Path) -> None:
    tenant, problems = load(tmp_path, GOOD)
    assert problems == []
    h = tenant.handoff  # type: ignore[attr-defined]
    assert h.numbers == ("+919800000001", "+919800000002")  # spaces gone, order kept
    assert (h.ring_seconds, h.record, h.caller_id) == (20, True, "08047112233")
    assert h.notify_template == "owner_handoff"
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=IST)
    saturday_4pm = datetime(2026, 11, 28, 16, 0, tzinfo=IST)
    assert h.hours.is_open(wednesday_noon) and not h.hours.is_open(saturday_4pm)
    # the hours are the tenant's local time, whatever zone the moment is given in
    assert h.hours.is_open(wednesday_noon.astimezone(ZoneInfo("UTC")))
    cb = tenant.callbacks  # type: ignore[attr-defined]
    assert cb.caller_id == "08047112233" and cb.per_number_per_day == 1
    assert cb.hours == h.hours  # none of its own: the hand-off hours


def test_the_connect_answer_rings_the_numbers_in_order(tmp_path: Path) -> None:
    tenant, _ = load(tmp_path, GOOD)
    answer = connect_answer(tenant.handoff, "08047112233")  # type: ignore[attr-defined]
    assert answer["destination"] == {"numbers": ["+919800000001", "+919800000002"]}
    assert answer["parallel_ringing"]["activate"] is False
    assert answer["max_ringing_duration"] == 20 and answer["record"] is True
    assert answer["start_call_playback"] == {
        "playback_to": "callee",
        "type": "text",
        "value": "A caller from the receptionist",
    }
    assert answer["outgoing_phone_number"] == "08047112233"
    assert answer["fetch_after_attempt"] is False


def test_a_call_type_may_ask_for_callbacks(tmp_path: Path) -> None:
    types = '\n[call_types.complaint]\ndescription = "Unhappy"\ncallback = true\n'
    tenant, problems = load(tmp_path, GOOD, types)
    assert problems == []
    assert tenant.call_type("complaint").callback  # type: ignore[attr-defined]
    assert not tenant.call_type("enquiry").callback  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('numbers = ["+91 98000 00001", "+919800000002"]', 'numbers = ["98000"]'), "not E.164"),
        (('numbers = ["+91 98000 00001", "+919800000002"]', "numbers = []"), "to ring in order"),
        (
            (
                'numbers = ["+91 98000 00001", "+919800000002"]',
                f"numbers = {['+91980000000' + str(i) for i in range(6)]}".replace("'", '"'),
            ),
            "at most 5",
        ),
        (('"sat 10:00-14:00"', '"sat 14:00-10:00"'), "after the opening time"),
        (('"sat 10:00-14:00"', '"someday 10:00-14:00"'), "write it like"),
        (('"sat 10:00-14:00"', '"sat 10:00-25:00"'), "HH:MM"),
        (('"sat 10:00-14:00"', '"sat-xyz 10:00-14:00"'), "unknown day"),
        (("ring_seconds = 20", "ring_seconds = 1000"), "from 5 to 120"),
        (("record = true", 'record = "yes"'), "true or false"),
        (('caller_id = "08047112233"\nnotify', 'caller_id = "my phone"\nnotify'), "ExoPhone"),
        (('notify_template = "owner_handoff"', 'notify_template = "nope"'), "not declared"),
        (("{{3}}", "and more"), "must have 3 placeholders"),
        (('whisper = "A caller from the receptionist"', f'whisper = "{"x" * 201}"'), "too long"),
        (("per_number_per_day = 1", "per_number_per_day = 0"), "from 1 to 10"),
        (("[callbacks]\ncaller_id", "[callbacks]\nper_day"), "caller_id"),
        (("ring_seconds = 20", "ringing = 20"), "ringing"),
    ],
)
def test_each_mistake_is_reported(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    tenant, problems = load(tmp_path, GOOD.replace(old, new, 1))
    assert tenant is None
    assert any(expected in p for p in problems), problems
    assert all("tenant.toml:" in p for p in problems), problems  # each names its line


def test_hours_lines() -> None:
    assert parse_hours_line("daily 09:00-21:00") == (
        frozenset(range(7)),
        *parse_hours_line("mon-sun 09:00-21:00")[1:],  # type: ignore[misc]
    )
    days, _, _ = parse_hours_line("fri-mon 10:00-12:00")  # type: ignore[misc]
    assert days == frozenset({4, 5, 6, 0})  # wraps over the weekend
    days, _, end = parse_hours_line("mon,wed 10:00-24:00")  # type: ignore[misc]
    assert days == frozenset({0, 2}) and end.hour == 23


def test_the_next_opening_of_the_hours(tmp_path: Path) -> None:
    tenant, problems = load(
        tmp_path,
        GOOD.replace(
            "per_number_per_day = 1",
            'per_number_per_day = 1\nhours = ["mon-fri 10:00-19:00", "sat 10:00-14:00"]',
        ),
    )
    assert problems == []
    hours = tenant.callbacks.hours  # type: ignore[attr-defined]
    open_now = datetime(2026, 12, 7, 11, 0, tzinfo=IST)  # a Monday, inside
    assert hours.next_open(open_now) == open_now
    early = datetime(2026, 12, 7, 8, 30, tzinfo=IST)  # Monday before opening: 10:00 that day
    assert hours.next_open(early) == datetime(2026, 12, 7, 10, 0, tzinfo=IST)
    saturday_late = datetime(2026, 12, 12, 15, 0, tzinfo=IST)  # after Saturday's close
    assert hours.next_open(saturday_late) == datetime(2026, 12, 14, 10, 0, tzinfo=IST)
    utc_night = datetime(2026, 12, 8, 20, 0, tzinfo=ZoneInfo("UTC"))  # 01:30 Wednesday IST
    assert hours.next_open(utc_night) == datetime(2026, 12, 9, 10, 0, tzinfo=IST)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('[exotel]\naccount_sid = "bakery1"\n', "needs the account's auth_user_env"),
        (
            '[exotel]\nauth_user_env = "SHOP_KEY"\nauth_token_env = "SHOP_TOKEN"\n'
            'account_sid = "../x y"\n',
            "exotel.account_sid must be letters, digits",
        ),
    ],
)
def test_a_bad_own_exotel_account(tmp_path: Path, table: str, says: str) -> None:
    _, problems = load(tmp_path, table)
    assert any(says in p for p in problems), problems


def test_a_good_own_exotel_account(tmp_path: Path) -> None:
    tenant, problems = load(
        tmp_path,
        '[exotel]\nauth_user_env = "SHOP_KEY"\nauth_token_env = "SHOP_TOKEN"\n'
        'account_sid = "shop-account_1"\n',
    )
    assert problems == []
    assert tenant.exotel_account_sid == "shop-account_1"  # type: ignore[attr-defined]
