"""Hand-off to a person on real calls: the agent says it is putting the caller through, the row
records who and why, the stream ends cleanly (Exotel's flow then runs its Connect applet), and
GET /exotel/connect answers that applet with the tenant's numbers; outside the hours the call
goes on with a message taken and the owner is told; a forged request to the URL gets nothing.

The hand-off is asked for through the session's entry point (`CallSession.request_handoff`, what
the `handoff` tool calls) on a call with the Gemini Live double, whose replies echo what the
bridge asks it to say."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from receptionist.bridge.handoff import OUTSIDE_HOURS, PUTTING_THROUGH
from receptionist.bridge.session import CallSession
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.engines.local.tts import TextToSpeech, TtsSettings
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.exotel_api import FakeExotelApi
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.store.api_keys import create_key
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.schema import notifications
from receptionist.tenants.hours import DAYS
from tests.integration.bridge_harness import Bridge, row_for, running_bridge
from tests.integration.test_dashboard import Browser

KEY = "connect-secret-123"
IST = ZoneInfo("Asia/Kolkata")
OWNER_TEMPLATE = """
[templates.owner_handoff]
language = "en"
text = "{{1}} wanted a person at {{2}}: {{3}}"
"""


def set_hours(bridge: Bridge, line: str) -> None:
    """The bakery's [handoff] hours become `line`, with the owner's notice template."""
    toml = bridge.ctx.settings.tenants_dir / "bakery" / "tenant.toml"
    text = toml.read_text().replace(
        'hours = ["mon-sat 10:00-20:00", "sun 10:00-14:00"]',
        f'hours = ["{line}"]\nnotify_template = "owner_handoff"',
    )
    toml.write_text(text + OWNER_TEMPLATE)
    bridge.ctx.tenants.invalidate("bakery")
    assert bridge.ctx.tenants.get("bakery").handoff.notify_template == "owner_handoff"  # type: ignore[union-attr]


def not_today() -> str:
    """Hours on a weekday that is not today (in the bakery's zone): outside them now."""
    today = datetime.now(IST).weekday()
    return f"{DAYS[(today + 3) % 7]} 10:00-11:00"


@pytest.fixture
async def bridge(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, exotel_connect_secret=SecretStr(KEY)) as b,
    ):
        yield b


async def live_session(bridge: Bridge, call_sid: str) -> CallSession:
    """The call's session once its greeting has been sent (the watchdog runs: hand-offs may
    end it). Waits for that condition; the deadline only stops a hung test."""
    async with asyncio.timeout(30):
        while True:
            session = bridge.ctx.registry.get(call_sid)
            if session is not None and session.answered_at is not None:
                return session
            await asyncio.sleep(0.02)


async def connect(bridge: Bridge, **params: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(
            f"http://127.0.0.1:{bridge.port}/exotel/connect",
            params=params,
            headers={"Exotel-Version": "1.0"},
        )


def silent_caller(bridge: Bridge, call_sid: str, hangup_after_ms: int) -> asyncio.Task[CallResult]:
    return asyncio.create_task(
        place_call(
            CallOptions(url=bridge.url("bakery"), call_sid=call_sid, max_call_s=60),
            CallerScript(utterances=[], hangup_after_ms=hangup_after_ms),
        )
    )


async def test_handoff_in_hours_ends_the_stream_and_the_connect_url_rings_the_owner(
    bridge: Bridge,
) -> None:
    set_hours(bridge, "daily 00:00-24:00")
    _, key = await create_key(bridge.db, tenant="bakery")  # before the calls write anything
    sid = "CAhandoff0001"
    caller = silent_caller(bridge, sid, hangup_after_ms=60_000)  # never hangs up itself
    session = await live_session(bridge, sid)
    result = await session.request_handoff("caller asked for the owner", "owner")
    assert result.status == PUTTING_THROUGH
    call = await caller
    # the bridge closed the stream (cleanly) once "putting you through" was heard
    assert call.closed_by == "server" and call.close_code == 1000
    row = await row_for(bridge.db, sid)
    assert row["end_reason"] == "handoff" and row["status"] == "completed"
    assert row["handoff"]["who"] == "owner"
    assert row["handoff"]["reason"] == "caller asked for the owner"
    agent = [t["text"] for t in row["transcript"] if t["speaker"] == "agent"]
    assert result.say in agent[-1]
    # Exotel's Connect applet now asks for the numbers
    answer = await connect(
        bridge, key=KEY, CallSid=sid, CallFrom="+919800000099", CallTo="08047112233"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["destination"]["numbers"] == ["+919800000001", "+919800000002"]
    assert body["max_ringing_duration"] == 25 and body["record"] is True
    assert body["start_call_playback"]["value"] == "Call from the Sweet Crumbs receptionist."
    row = await get_call(bridge.db, sid)
    assert row is not None and row["handoff"]["outcome"] == "ringing"
    assert row["handoff"]["who"] == "owner"  # kept beside the outcome
    # nobody answered: the flow's next Voicebot applet (`?leg=message`) brings the caller back
    back = await place_call(
        CallOptions(
            url=bridge.url("bakery", "?leg=message"),
            call_sid=sid,
            custom_parameters={"leg": "message"},
            max_call_s=60,
        ),
        CallerScript(hangup_after_ms=100),
    )
    assert back.ok, back.error
    message = await row_for(bridge.db, sid + "M")  # its own row; the first one is kept
    assert ("message_leg", f"back from {sid}") in [
        (e["kind"], e["detail"]) for e in message["events"]
    ]
    first = await get_call(bridge.db, sid)
    assert first is not None and first["handoff"]["outcome"] == "no_answer"
    assert first["end_reason"] == "handoff" and first["transcript"] == row["transcript"]
    async with bridge.db.session() as conn:
        keys = (
            (
                await conn.execute(
                    sa.select(notifications.c.idempotency_key).where(
                        notifications.c.call_sid == sid
                    )
                )
            )
            .scalars()
            .all()
        )
    assert keys == [f"handoff:{sid}"]  # the owner hears of it once
    # the owner's API shows who and why, and what came of it
    async with httpx.AsyncClient() as http:
        got = await http.get(
            f"http://127.0.0.1:{bridge.port}/api/v1/calls/{sid}",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert got.status_code == 200
    shown = got.json()["handoff"]
    assert (shown["who"], shown["outcome"]) == ("owner", "no_answer")


async def test_handoff_outside_hours_takes_a_message_and_tells_the_owner(
    bridge: Bridge,
) -> None:
    set_hours(bridge, not_today())
    sid = "CAhandoff0002"
    caller = silent_caller(bridge, sid, hangup_after_ms=60_000)
    session = await live_session(bridge, sid)
    result = await session.request_handoff("wants the manager", None)
    assert result.status == OUTSIDE_HOURS
    assert "message" in result.say
    assert session.hangup_reason is None  # the call goes on: the agent takes the message
    await session.drain_close("test_over")
    call = await caller
    assert call.close_code == 1000
    row = await row_for(bridge.db, sid)
    assert row["end_reason"] == "test_over"
    assert row["handoff"]["outcome"] == "outside_hours"
    assert any(e["kind"] == "handoff_outside_hours" for e in row["events"])
    async with bridge.db.session() as conn:
        notes = (
            (await conn.execute(sa.select(notifications).where(notifications.c.call_sid == sid)))
            .mappings()
            .all()
        )
    assert [(n["idempotency_key"], n["recipient"], n["status"]) for n in notes] == [
        (f"handoff:{sid}", "919800000001", "queued")
    ]
    assert "wanted a person outside hours" in notes[0]["details"]["text"]
    # the Connect applet, if the flow reaches it anyway, rings nobody (its "no answer" branch)
    answer = await connect(bridge, key=KEY, CallSid=sid, CallTo="08047112233")
    assert answer.status_code == 200 and answer.json()["destination"]["numbers"] == []
    async with bridge.db.session() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).where(notifications.c.call_sid == sid))
        ).scalar_one()
    assert count == 1  # told once, however often it is asked


async def finished_call(bridge: Bridge) -> str:
    """A call the bridge carried (its row exists), ended by the caller."""
    call = await place_call(
        CallOptions(url=bridge.url("bakery"), max_call_s=30), CallerScript(hangup_after_ms=100)
    )
    assert call.ok, call.error
    await row_for(bridge.db, call.call_sid)
    return call.call_sid


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 403),  # no key
        ({"key": "guess"}, 403),  # a wrong key
        ({"key": KEY[:-1]}, 403),  # nearly right
        ({"key": KEY, "CallSid": "CAnever-carried"}, 400),  # not a call sid
        ({"key": KEY, "CallSid": "CAnevercarried"}, 403),  # a call we never carried
        ({"key": KEY, "CallSid": "{sid}", "CallTo": "<script>"}, 400),
    ],
)
async def test_a_forged_connect_request_gets_no_numbers(
    bridge: Bridge, params: dict[str, str], status: int
) -> None:
    set_hours(bridge, "daily 00:00-24:00")
    sid = await finished_call(bridge)
    sent = {k: v.format(sid=sid) for k, v in params.items()}
    sent.setdefault("CallSid", sid)
    answer = await connect(bridge, **sent)
    assert answer.status_code == status
    assert answer.json()["destination"]["numbers"] == []
    row = await get_call(bridge.db, sid)
    assert row is not None and row["handoff"] is None  # nothing recorded for a forgery


async def test_without_the_setting_every_connect_request_is_refused(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with FakeGeminiLive() as fake, running_bridge(sqlite_db, tmp_path, fake) as b:
        sid = await finished_call(b)
        answer = await connect(b, key="", CallSid=sid)
        assert answer.status_code == 403 and answer.json()["destination"]["numbers"] == []


async def test_the_local_engine_puts_a_caller_through_when_asked(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Spoken end to end: Piper speaks the caller, Whisper hears "talk to the owner", the
    grounded brain says it is putting them through and the bridge ends the stream. The
    deadlines only stop a hung test (tests/integration/test_local_call.py has the why)."""
    try:
        check_local_models()
    except LocalModelsMissing as exc:  # pragma: no cover - CI installs the extra
        pytest.skip(f"local engine not installed: {exc}")
    tts = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))
    tts.load()
    far_off = {"silence_prompt_after_s": 1000.0, "silence_hangup_after_s": 1100.0}
    async with (
        FakeGeminiLive() as unused,  # the harness wants one; the local engine answers
        running_bridge(sqlite_db, tmp_path, unused, voice_engine="local", **far_off) as b,
    ):
        set_hours(b, "daily 00:00-24:00")
        call = await place_call(
            CallOptions(url=b.url("bakery"), voice=tts.synthesize, max_call_s=900),
            CallerScript(
                utterances=["Hello, can I talk to the owner please?"],
                turn_timeout_s=300,
                agent_quiet_ms=5000,
                hangup_after_ms=120_000,  # the caller waits: the bridge must end it
            ),
        )
        row = await row_for(b.db, call.call_sid)
    assert call.closed_by == "server", (call.error, row["transcript"])
    assert row["end_reason"] == "handoff", row["transcript"]
    assert row["handoff"]["reason"] == "caller_asked"
    handoff = b.ctx.tenants.get("bakery").handoff
    assert handoff is not None
    assert row["transcript"][-1]["text"].strip() == handoff.phrase("en-IN")


# ---------------------------------------------------------------- who answered (pass-through)


async def test_the_agent_pass_through_records_who_answered(bridge: Bridge) -> None:
    """Exotel's flow double runs the Connect applet: the first number rings out, the second
    picks up; its pass-through's Answered event names them on the hand-off, once."""
    set_hours(bridge, "daily 00:00-24:00")
    _, api_key = await create_key(bridge.db, tenant="bakery")
    sid = await finished_call(bridge)
    base = f"http://127.0.0.1:{bridge.port}/exotel"
    async with FakeExotelApi() as exotel:
        sent = await exotel.run_connect_applet(
            f"{base}/connect?key={KEY}",
            call_sid=sid,
            call_from="09845012345",
            call_to="08047112233",
            answered_by="+919800000002",
            passthru_url=f"{base}/passthru?key={KEY}",
        )
    assert sent == [
        ("Dial", "+919800000001", 200),
        ("Terminal", "+919800000001", 200),
        ("Dial", "+919800000002", 200),
        ("Answered", "+919800000002", 200),
        ("Terminal", "+919800000002", 200),
    ]
    row = await get_call(bridge.db, sid)
    assert row is not None
    answered = row["handoff"]["answered"]
    assert answered["number"] == "+919800000002"
    at = datetime.fromisoformat(answered["at"])
    # a repeat (Exotel sending it again, or the other number) changes nothing
    for number in ("+919800000002", "09800000001"):
        again = await passthru(
            bridge, key=KEY, CallSid=sid, EventType="Answered", DialWhomNumber=number
        )
        assert again.status_code == 200 and again.json()["recorded"] is False
    row = await get_call(bridge.db, sid)
    assert row is not None and row["handoff"]["answered"] == answered
    assert datetime.fromisoformat(row["handoff"]["answered"]["at"]) == at
    async with httpx.AsyncClient() as http:
        shown = await http.get(
            f"{base.removesuffix('/exotel')}/api/v1/calls/{sid}",
            headers={"Authorization": f"Bearer {api_key}"},
        )
    assert shown.json()["handoff"]["answered"]["number"] == "+919800000002"
    # and the owner's call page says who picked up
    b = Browser(f"http://127.0.0.1:{bridge.port}")
    try:
        form = await b.get("/app/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        assert (await b.post("/app/login", {"key": api_key, "csrf": token.group(1)})).is_redirect
        page = (await b.get(f"/app/calls/{sid}")).text
    finally:
        await b.aclose()
    assert 'data-testid="handoff-answered"' in page and "Answered by +919800000002" in page


async def passthru(bridge: Bridge, **params: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{bridge.port}/exotel/passthru", params=params)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 403),  # no key
        ({"key": "guess"}, 403),  # a wrong key
        ({"key": KEY[:-1]}, 403),  # nearly right
        ({"key": KEY, "CallSid": "../etc"}, 400),  # not a call sid
        ({"key": KEY, "CallSid": "CAnevercarried"}, 403),  # a call we never carried
        ({"key": KEY, "EventType": "Exploded"}, 400),
        ({"key": KEY, "DialWhomNumber": "+91980000000"}, 400),  # one digit short
        ({"key": KEY, "DialWhomNumber": "9" * 40}, 400),  # too long to be a number
        ({"key": KEY, "DialWhomNumber": "<script>"}, 400),
        ({"key": KEY, "DialWhomNumber": "anonymous"}, 400),
        ({"key": KEY, "DialWhomNumber": "+919845099999"}, 403),  # a number we never rang
    ],
)
async def test_a_forged_or_bad_pass_through_records_nothing(
    bridge: Bridge, params: dict[str, str], status: int
) -> None:
    set_hours(bridge, "daily 00:00-24:00")
    sid = await finished_call(bridge)
    assert (await connect(bridge, key=KEY, CallSid=sid)).status_code == 200  # it rang
    sent = {"CallSid": sid, "EventType": "Answered", "DialWhomNumber": "+919800000001"}
    answer = await passthru(bridge, **(sent | params))
    assert answer.status_code == status, answer.text
    row = await get_call(bridge.db, sid)
    assert row is not None and "answered" not in row["handoff"]


async def test_a_pass_through_for_a_call_that_never_rang_records_nothing(bridge: Bridge) -> None:
    set_hours(bridge, not_today())  # the Connect URL named nobody
    sid = await finished_call(bridge)
    assert (await connect(bridge, key=KEY, CallSid=sid)).json()["destination"]["numbers"] == []
    sent = {"CallSid": sid, "EventType": "Answered", "DialWhomNumber": "+919800000001"}
    assert (await passthru(bridge, key=KEY, **sent)).status_code == 403
    row = await get_call(bridge.db, sid)
    assert row is not None and "answered" not in row["handoff"]
