"""Tools in a real call: simulated Exotel caller → bridge → google-genai → Live double, whose
scripted model calls the tenant's tools; and the engine alone against the double, with a tool
held by the test (never a sleep) to show the audio keeps flowing and a slow tool is answered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from receptionist.engines.base import EngineRequest, Reconnected
from receptionist.engines.gemini_live import GeminiLiveConfig, GeminiLiveEngine, make_client
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import (
    CallScript,
    FakeGeminiLive,
    ScriptedToolCall,
    ScriptedTurn,
)
from receptionist.sim.speech import silence, synth_speech
from receptionist.store import bookings as store
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.handoffs import get_handoff
from receptionist.tools.runner import ToolBox, ToolContext
from tests.integration.bridge_harness import running_bridge
from tests.tool_tenants import SALOON_TOOLS, tool_tenant

IST = ZoneInfo("Asia/Kolkata")
HANDOFF_ALL_DAY = '\n[handoff]\nnumbers = ["+919800000001"]\nhours = ["daily 00:00-24:00"]\n'


def _tomorrow_at(hour: int) -> datetime:
    day = datetime.now(IST).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=IST).astimezone(UTC)


def _said(answers: dict[str, Any]) -> str:
    check = answers.get("check_slot") or {}
    if check.get("free") is False:
        nxt = check["next_free"][0]["time"]
        return f"Four is taken; {nxt} is free, shall I book it?"
    return "It is free."


async def test_tools_in_a_call(db: Database, tmp_path: Path) -> None:
    turns = [
        ScriptedTurn(
            heard="Is 4 pm free tomorrow?",
            reply="",
            tool_calls=[ScriptedToolCall("check_slot", {"date": "tomorrow", "time": "16:00"})],
            reply_from=_said,
        ),
        ScriptedTurn(
            heard="Yes, book five for Asha.",
            reply="Booked, see you then.",
            tool_calls=[
                ScriptedToolCall("book", {"date": "tomorrow", "time": "17:00", "name": "Asha"}),
                # the caller moved on before this one answered: withdrawn, never answered
                ScriptedToolCall("quote", {"items": [{"item": "Clean-up"}]}, cancel=True),
            ],
        ),
        ScriptedTurn(
            heard="And my order from last week?",
            reply="Let me see.",
            tool_calls=[
                ScriptedToolCall("order_status", {}),
                ScriptedToolCall("quote", {"items": "a facial"}),  # bad arguments
                ScriptedToolCall("handoff", {"reason": "wants the owner", "who": "owner"}),
            ],
        ),
    ]
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        toml = bridge.ctx.settings.tenants_dir / "saloon" / "tenant.toml"
        toml.write_text(toml.read_text() + SALOON_TOOLS + HANDOFF_ALL_DAY)
        bridge.ctx.tenants.invalidate("saloon")
        # 4 pm tomorrow is already someone else's
        held = await store.hold_slot(
            db,
            store.SlotHold(
                "saloon", "Priya", _tomorrow_at(16), _tomorrow_at(17), timedelta(minutes=10)
            ),
        )
        assert held is not None
        result = await place_call(
            CallOptions(url=bridge.url("saloon"), realtime=False, from_number="+919811112222"),
            CallerScript(utterances=[t.heard for t in turns]),
        )
    assert result.ok, result.error
    session = fake.sessions[0]
    declared = session.setup["tools"][0]["functionDeclarations"]  # type: ignore[index]
    assert [d["name"] for d in declared] == [
        "check_slot",
        "book",
        "quote",
        "order_status",
        "handoff",
    ]
    assert declared[3]["behavior"] == "NON_BLOCKING" and "behavior" not in declared[0]
    assert "check_slot" in (session.system_instruction or "")  # told how to use them

    calls = {c.name + (":cancelled" if c.cancelled else ""): c for c in session.tool_calls}
    check = calls["check_slot"].response
    assert check["free"] is False and check["next_free"][0]["time"] == "17:00", check
    assert session.replies[1].text == "Four is taken; 17:00 is free, shall I book it?"
    booked = calls["book"].response
    assert booked["booked"] is True and booked["resource"] == "Priya"
    # (whether its answer was already on the way when the withdrawal came is a race here; the
    # engine test below holds the tool to show a withdrawn call is never answered)
    assert calls["quote:cancelled"].response is None
    status = calls["order_status"]
    assert status.scheduling == "WHEN_IDLE" and status.response["found"] == 1  # the booking
    bad = next(c for c in session.tool_calls if c.name == "quote" and not c.cancelled)
    assert bad.response["reason"] == "invalid_args"

    row = await get_call(db, result.call_sid)
    assert row is not None
    notes = [e["detail"] for e in row["events"] if e["kind"] == "tool"]
    assert any(n.startswith("check_slot ok") for n in notes)
    assert any(n.startswith("quote invalid_args") for n in notes)
    assert any(e["kind"] == "bookings_confirmed" for e in row["events"])
    handoffs = [e["detail"] for e in row["events"] if e["kind"] == "handoff_requested"]
    assert handoffs == ["wants the owner (asked for owner)"]
    # the tool went through the hand-off: the model is given the words, the stream ends after
    # its turn (Exotel's Connect applet takes the caller on), and the row says who and why
    put = calls["handoff"].response
    assert put["handoff"] == "putting_through" and "putting you through" in put["say"], put
    assert row["end_reason"] == "handoff"
    got = await get_handoff(db, result.call_sid)
    assert got is not None and (got["who"], got["reason"]) == ("owner", "wants the owner")
    mine = await store.find_bookings(db, "saloon", reference=booked["reference"])
    assert mine[0].status == "confirmed" and mine[0].call_sid == result.call_sid


# --- the engine alone: tools never hold up the audio ----------------------------------------


def _speech_16k(text: str) -> bytes:
    return synth_speech(text, 16000) + silence(700, 16000)


async def _engine(
    fake: FakeGeminiLive, tools: ToolBox, seen: list[Any] | None = None
) -> tuple[GeminiLiveEngine, asyncio.Task[list[Any]]]:
    """The engine connected to the double, and a task draining its events (into `seen` as
    they come, when given)."""
    cfg = GeminiLiveConfig(
        api_key="test-key", model="m", base_url=fake.base_url, ca_file=Path(fake.ca_file)
    )
    request = EngineRequest(
        call_sid="CAeng", tenant_id="saloon", system_instruction="hi", language="en-IN",
        tools=tools,
    )  # fmt: skip
    engine = GeminiLiveEngine(make_client(cfg), cfg, request)
    await engine.connect()

    async def drain() -> list[Any]:
        got = seen if seen is not None else []
        async for ev in engine.events():
            got.append(ev)
        return got

    return engine, asyncio.create_task(drain())


async def _until(cond: Any, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110 - the double counts audio without an event
            await asyncio.sleep(0.005)


async def _send(engine: GeminiLiveEngine, pcm: bytes) -> None:
    for i in range(0, len(pcm), 3200):
        await engine.send_audio(pcm[i : i + 3200])


@pytest.mark.parametrize("release", [True, False], ids=["released", "never_released"])
async def test_a_held_tool_does_not_stop_the_audio(
    tmp_path: Path, sqlite_db: Database, release: bool
) -> None:
    started, go = asyncio.Event(), asyncio.Event()

    async def held(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await go.wait()
        return {"total_rupees": "700"}

    ctx = ToolContext(tenant=tool_tenant(tmp_path), db=sqlite_db, call_sid="CAeng")
    # never released: answered at the bound ("taking too long"); released: its own answer
    box = ToolBox(ctx, functions={"quote": held}, timeout_s=30.0 if release else 0.2)
    script = CallScript(
        turns=[
            ScriptedTurn(
                heard="How much is a clean-up?",
                reply="",
                tool_calls=[ScriptedToolCall("quote", {"items": [{"item": "Clean-up"}]})],
                reply_from=lambda a: f"answer {sorted(a['quote'])}",
            )
        ]
    )
    async with FakeGeminiLive(script=script) as fake:
        engine, events = await _engine(fake, box)
        await _send(engine, _speech_16k("How much is a clean-up?"))
        await asyncio.wait_for(started.wait(), 10)
        session = fake.sessions[0]
        before = session.audio_chunks
        await _send(engine, silence(1000, 16000))  # the caller's line goes on meanwhile
        await _until(lambda: session.audio_chunks >= before + 5)
        call = session.tool_calls[0]
        if release:
            assert call.response is None  # still held: no answer yet, and the audio flowed
            go.set()
        await asyncio.wait_for(call.answered.wait(), 10)
        await engine.close()
        await events
    if release:
        assert call.response == {"total_rupees": "700"}
    else:
        assert call.response["reason"] == "timeout"
    assert box.outcomes[-1].status == ("ok" if release else "timeout")
    assert len(engine.tool_round_trips_ms) == 1


async def test_a_withdrawn_call_is_stopped_and_never_answered(
    tmp_path: Path, sqlite_db: Database
) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def held(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await never.wait()
        return {"late": True}

    ctx = ToolContext(tenant=tool_tenant(tmp_path), db=sqlite_db, call_sid="CAeng")
    box = ToolBox(ctx, functions={"quote": held}, timeout_s=30.0)
    script = CallScript(
        turns=[
            ScriptedTurn(
                heard="How much is a clean-up?",
                reply="Never mind then.",
                tool_calls=[ScriptedToolCall("quote", {"items": [{"item": "Clean-up"}]})],
            )
        ]
    )
    async with FakeGeminiLive(script=script) as fake:
        engine, events = await _engine(fake, box)
        await _send(engine, _speech_16k("How much is a clean-up?"))
        await asyncio.wait_for(started.wait(), 10)  # the tool is running, held
        session = fake.sessions[0]
        [call] = session.tool_calls
        await fake.cancel_tool_calls([call.call_id])
        await _until(lambda: [o.status for o in box.outcomes] == ["cancelled"])
        never.set()  # too late: the task was stopped, nothing is left to answer
        # the model goes on (its reply after the withdrawal), many loop turns after the release
        await _until(
            lambda: any(r.completed and r.text == "Never mind then." for r in session.replies)
        )
        await engine.close()
        await events
    assert call.cancelled and call.response is None
    assert session.stray_tool_responses == []
    assert len(engine.tool_round_trips_ms) == 0


# --- a hold is the caller's only once its answer reached the model -----------------------------


def _booking_script() -> CallScript:
    args = {"date": "tomorrow", "time": "17:00", "name": "Asha"}
    return CallScript(
        turns=[
            ScriptedTurn(
                heard="Book five tomorrow for Asha.",
                reply="",
                tool_calls=[ScriptedToolCall("book", args)],
                reply_from=lambda a: f"answer {sorted(a.get('book') or {})}",
            )
        ]
    )


def _held_book(started: asyncio.Event, go: asyncio.Event) -> Any:
    """The real `book` (its hold is written), whose answer the test holds back."""
    from receptionist.tools.functions import book_tool

    async def book(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        result = await book_tool(ctx, args)
        started.set()
        await go.wait()
        return result

    return book


async def test_a_delivered_hold_is_confirmed(tmp_path: Path, db: Database) -> None:
    started, go = asyncio.Event(), asyncio.Event()
    go.set()
    ctx = ToolContext(tenant=tool_tenant(tmp_path), db=db, call_sid="CAeng")
    box = ToolBox(ctx, functions={"book": _held_book(started, go)}, timeout_s=30.0)
    async with FakeGeminiLive(script=_booking_script()) as fake:
        engine, events = await _engine(fake, box)
        await _send(engine, _speech_16k("Book five tomorrow for Asha."))
        session = fake.sessions[0]
        await _until(lambda: bool(session.tool_calls))
        await asyncio.wait_for(session.tool_calls[0].answered.wait(), 10)
        await engine.close()
        await events
    assert session.tool_calls[0].response["booked"] is True
    assert ctx.told == ctx.held and len(ctx.held) == 1
    assert await store.settle_call(db, "CAeng", told=ctx.told) == (1, 0)


@pytest.mark.parametrize("lost", ["timeout", "session_dropped"])
async def test_a_hold_whose_answer_was_lost_is_released(
    tmp_path: Path, db: Database, lost: str
) -> None:
    """The hold is written, but its answer never reaches the model: the tool ran past its bound
    (the model is told "taking too long"), or the session dropped while it ran (the answer has
    nowhere to go). The caller never heard of the booking: the call's end releases it."""
    started, go = asyncio.Event(), asyncio.Event()
    ctx = ToolContext(tenant=tool_tenant(tmp_path), db=db, call_sid="CAeng")
    timeout_s = 0.3 if lost == "timeout" else 30.0
    box = ToolBox(ctx, functions={"book": _held_book(started, go)}, timeout_s=timeout_s)
    seen: list[Any] = []
    async with FakeGeminiLive(script=_booking_script()) as fake:
        engine, events = await _engine(fake, box, seen)
        await _send(engine, _speech_16k("Book five tomorrow for Asha."))
        await asyncio.wait_for(started.wait(), 10)  # the hold is written
        session = fake.sessions[0]
        if lost == "timeout":
            await asyncio.wait_for(session.tool_calls[0].answered.wait(), 10)
            assert session.tool_calls[0].response["reason"] == "timeout"
        else:
            await fake.drop(0)
            # the engine has replaced the session the call came from before the answer is ready
            await _until(lambda: any(isinstance(e, Reconnected) for e in seen))
            go.set()
            await _until(lambda: [o.status for o in box.outcomes] == ["ok"])
        await engine.close()
        await events
    assert len(ctx.held) == 1 and ctx.told == []
    assert await store.settle_call(db, "CAeng", told=ctx.told) == (0, 1)
    [row] = await store.find_bookings(db, "saloon", reference=ctx.held[0])
    assert row.status == "expired"
