"""Silence, maximum length, DTMF and Gemini's goAway on real calls (SQLite)."""

from __future__ import annotations

from pathlib import Path

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.bridge_harness import running_bridge

TURNS = [
    ScriptedTurn(heard="Hello there.", reply="Hi!"),
    ScriptedTurn(heard="Bye now.", reply="Bye!"),
]


async def test_silent_caller_is_asked_then_goodbye_and_hangup(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(
            sqlite_db, tmp_path, fake, silence_prompt_after_s=1.0, silence_hangup_after_s=2.5
        ) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("saloon"), realtime=True, max_call_s=40),
            CallerScript(utterances=[], hangup_after_ms=30_000),  # says nothing, never hangs up
        )
        tenant = bridge.ctx.tenants.get("saloon")
    assert result.closed_by == "server"
    spoken = fake.sessions[0].reply_texts
    assert spoken[1] == tenant.messages.still_there
    assert spoken[2] == tenant.messages.goodbye_inactive
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    assert row["status"] == "completed" and row["end_reason"] == "caller_silent"
    assert [t["text"] for t in row["transcript"]][-1] == tenant.messages.goodbye_inactive
    assert {"silence_prompt", "hangup"} <= {e["kind"] for e in row["events"]}


async def test_maximum_call_length(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake, max_call_duration_s=3.0) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("clinic"), realtime=True, max_call_s=40),
            CallerScript(utterances=[], hangup_after_ms=30_000),
        )
        tenant = bridge.ctx.tenants.get("clinic")
    assert result.closed_by == "server"
    assert fake.sessions[0].reply_texts[-1] == tenant.messages.goodbye_max_duration
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["end_reason"] == "max_duration"


async def test_dtmf_is_recorded(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Hello there."], dtmf={0: "12"}),
        )
    assert result.ok, result.error
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    assert row["stats"]["dtmf"] == 2
    assert [e["detail"] for e in row["events"] if e["kind"] == "dtmf"] == ["1", "2"]


async def test_go_away_resumes_on_a_new_session(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(
            script=CallScript(turns=TURNS), failure=Failure(go_away_after_s=1.0)
        ) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=True),
            CallerScript(utterances=["Hello there.", "Bye now."]),
        )
    assert result.ok, result.error
    assert len(fake.sessions) >= 2
    resumed = fake.sessions[1].setup or {}
    resumption = resumed.get("sessionResumption") or resumed.get("session_resumption") or {}
    assert resumption.get("handle") in fake.sessions[0].resumption_handles
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["status"] == "completed"
    assert "engine_go_away" in {e["kind"] for e in row["events"]}
    assert len(result.response_ms) == 2  # both caller turns were answered
