"""Silence, maximum length, DTMF and Gemini's goAway on real calls (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.postcall.costs import cost_call
from receptionist.postcall.pricing import load_pricing
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, ScriptedTurn
from receptionist.store.calls import FinishedCall, finish_call, get_call
from receptionist.store.db import Database
from receptionist.usage import TokenUsage
from tests.integration.bridge_harness import Bridge, running_bridge

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
    # Asked once, then told goodbye: nothing else was said.
    assert [r.kind for r in fake.sessions[0].replies] == ["greeting", "echo", "echo"]
    spoken = fake.sessions[0].reply_texts
    assert spoken[1:] == [tenant.messages.still_there, tenant.messages.goodbye_inactive]
    # All three reached the caller in full before the hang-up.
    sent_ms = sum(r.audio_ms for r in fake.sessions[0].replies)
    assert result.agent_audio_ms == pytest.approx(sent_ms, abs=100)
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    assert row["status"] == "completed" and row["end_reason"] == "caller_silent"
    agent = [t["text"] for t in row["transcript"] if t["speaker"] == "agent"]
    assert agent[1:] == [tenant.messages.still_there, tenant.messages.goodbye_inactive]
    assert len(agent) == len(row["transcript"])  # the caller said nothing
    kinds = [e["kind"] for e in row["events"]]
    assert kinds.count("silence_prompt") == 1 and kinds.count("hangup") == 1
    assert kinds.index("silence_prompt") < kinds.index("hangup")


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
    assert [r.kind for r in fake.sessions[0].replies] == ["greeting", "echo"]
    assert fake.sessions[0].reply_texts[-1] == tenant.messages.goodbye_max_duration
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["end_reason"] == "max_duration"
    assert [e["kind"] for e in row["events"]].count("hangup") == 1


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
    # goAway comes 1 s after setup; the caller first speaks only after the greeting (about 6 s
    # of audio) has played, so it always lands before the first reply. The engine switches
    # sessions at the first moment between turns with a fresh resumption handle (here: the
    # greeting's, the double sends its replies faster than real time), so the resumed session
    # hears both caller turns.
    assert len(fake.sessions) >= 2
    resumed = fake.sessions[1].setup or {}
    resumption = resumed.get("sessionResumption") or resumed.get("session_resumption") or {}
    assert resumption.get("handle") in fake.sessions[0].resumption_handles
    assert fake.sessions[1].resumed_from == resumption.get("handle")
    assert sum(len(s.caller_turns) for s in fake.sessions) == 2
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["status"] == "completed"
    assert {"engine_go_away", "engine_resumed"} <= {e["kind"] for e in row["events"]}
    assert len(result.response_ms) == 2  # both caller turns were answered


async def _spend(db: Database, tenant: str, audio_tokens_in: int) -> None:
    sid = f"CAspent{audio_tokens_in}"
    usage = TokenUsage(
        model_name="gemini-2.5-flash-native-audio-preview-09-2025",
        input_tokens=audio_tokens_in,
        input_audio_tokens=audio_tokens_in,
    )
    await finish_call(
        db, FinishedCall(call_sid=sid, status="completed", tenant=tenant, usage=[usage])
    )
    await cost_call(db, sid, load_pricing())


def _set_budget(bridge: Bridge, warn: float, limit: float) -> None:
    toml = bridge.ctx.settings.tenants_dir / "bakery" / "tenant.toml"
    lines = toml.read_text().splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("[call_types."))
    budget = ["[budget]", f"monthly_usd_warn = {warn}", f"monthly_usd_limit = {limit}", ""]
    toml.write_text("\n".join(lines[:first_table] + budget + lines[first_table:]) + "\n")
    bridge.ctx.tenants.invalidate("bakery")


async def test_over_budget_calls_are_declined_politely(sqlite_db: Database, tmp_path: Path) -> None:
    await _spend(sqlite_db, "bakery", 2_000_000)  # $6 at $3 per 1M audio tokens
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        _set_budget(bridge, warn=2, limit=5)
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False, max_call_s=30),
            CallerScript(utterances=[], hangup_after_ms=20_000),
        )
        busy = bridge.ctx.tenants.get("bakery").messages.busy
    assert result.closed_by == "server"
    assert fake.sessions[0].reply_texts == [busy]  # no greeting, just the polite line
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["end_reason"] == "budget_exceeded"
    assert "budget_exceeded" in {e["kind"] for e in row["events"]}


async def test_budget_warning_is_recorded_and_the_call_goes_on(
    sqlite_db: Database, tmp_path: Path
) -> None:
    await _spend(sqlite_db, "bakery", 1_000_000)  # $3
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        _set_budget(bridge, warn=2, limit=5)
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Hello there."]),
        )
    assert result.ok, result.error
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and "budget_warning" in {e["kind"] for e in row["events"]}
    assert TURNS[0].reply in [t["text"] for t in row["transcript"]]
