"""Real calls over loopback: simulated Exotel caller → bridge → google-genai → Live double.

Runs on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.sim.scenarios import scenario
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.bridge_harness import running_bridge

SHORT = [
    ScriptedTurn(heard="Do you have eggless cakes?", reply="Yes, all our cakes."),
    ScriptedTurn(heard="One kilo truffle, please.", reply="Done, thank you!"),
]

BAKERY_GREETING = (
    "Hello, thank you for calling Sweet Crumbs Bakery! This is Priya. How can I help you today?"
)


async def test_conversation_greeting_first_then_turns_stored(db: Database, tmp_path: Path) -> None:
    turns = SHORT
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False, from_number="+919811112222"),
            CallerScript(utterances=[t.heard for t in turns]),
        )
    assert result.ok, result.error
    # The greeting reached the caller before the caller said anything.
    kinds = [e.kind for e in result.events]
    assert kinds.index("agent_audio_start") < kinds.index("caller_said")
    assert result.greeting_ms is not None
    assert len(result.response_ms) == len(turns)

    # The model was set up from the tenant and asked to say the tenant's own greeting.
    session = fake.sessions[0]
    assert "Sweet Crumbs Bakery" in (session.system_instruction or "")
    assert "Chocolate Truffle" in (session.system_instruction or "")  # input files included
    assert session.replies[0].kind == "greeting"
    assert session.replies[0].text == BAKERY_GREETING

    row = await get_call(db, result.call_sid)
    assert row is not None
    assert row["tenant"] == "bakery"
    assert row["status"] == "completed"
    assert row["from_number"] == "+919811112222"
    assert row["sample_rate"] == 8000
    assert row["stage"] == "transcript_saved"
    transcript = row["transcript"]
    speakers = [t["speaker"] for t in transcript]
    assert speakers == ["agent"] + ["caller", "agent"] * len(turns)
    assert transcript[0]["text"] == BAKERY_GREETING
    for i, turn in enumerate(turns):
        assert transcript[1 + 2 * i]["text"] == turn.heard
        assert transcript[2 + 2 * i]["text"] == turn.reply
    for t in transcript:
        assert t["end_ms"] >= t["start_ms"] >= 0
    assert [t["start_ms"] for t in transcript] == sorted(t["start_ms"] for t in transcript)

    usage = row["usage"]
    assert len(usage) == 1
    assert usage[0]["model_name"] == bridge.ctx.settings.gemini_live_model
    assert usage[0]["purpose"] == "live"
    assert usage[0]["input_tokens"] > 0 and usage[0]["output_tokens"] > 0
    # The double's billing is deterministic: what it reported is what we stored.
    reported_in = sum(u["promptTokenCount"] for u in session.usage)
    assert usage[0]["input_tokens"] == reported_in

    stats = row["stats"]
    assert stats["frames_in"] == result.media_sent
    assert stats["frames_out"] == result.media_received
    assert stats["bad_frames"] == {}
    # A mark after each agent turn; every one the caller echoed (before its stop) was counted.
    assert stats["marks_sent"] == 1 + len(turns)
    assert stats["marks_received"] == result.marks_echoed >= len(turns)
    assert stats["latency_in"]["count"] == stats["frames_in"]


@pytest.mark.parametrize("generating", [True, False], ids=["while_generating", "after_generating"])
async def test_barge_in_sends_clear_and_marks_turn(
    db: Database, tmp_path: Path, generating: bool
) -> None:
    long_reply = "We have many cakes " * 12
    # The model sends the long reply (about 15 s of audio) at once; the caller speaks 700 ms
    # into it, while it still plays: either the model holds the end back, never to finish it
    # (the reply is still being generated at the barge-in, whatever this machine's speed), or
    # it has finished and only the audio is still playing (the bridge's own playback estimate).
    hold = Hold(after_ms=14_000) if generating else None
    script = CallScript(
        turns=[
            ScriptedTurn(heard="What cakes do you have?", reply=long_reply.strip(), hold=hold),
            ScriptedTurn(heard="Just chocolate please.", reply="Chocolate truffle it is."),
        ]
    )
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=True),
            CallerScript(
                utterances=["What cakes do you have?", "Just chocolate please."],
                barge_in={1: 700},
            ),
        )
    assert result.ok, result.error
    session = fake.sessions[0]
    assert len(session.interruptions) == 1
    assert [r.interrupted for r in session.replies] == [False, True, False]
    assert session.replies[1].completed is not generating
    assert result.clears == 1  # the bridge told Exotel to drop the queued audio
    assert result.cleared_ms > 0
    row = await get_call(db, result.call_sid)
    assert row is not None
    assert row["stats"]["clears"] == 1 and row["stats"]["interruptions"] == 1
    agent = [t for t in row["transcript"] if t["speaker"] == "agent"]
    assert [bool(t.get("interrupted")) for t in agent] == [False, True, False]
    assert agent[1]["text"] and long_reply.startswith(agent[1]["text"])
    if generating:  # the transcript holds what was said before the hold, not the whole reply
        assert len(agent[1]["text"]) < len(long_reply.strip())
    assert row["transcript"][-1]["text"] == "Chocolate truffle it is."


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_wideband_streams(sqlite_db: Database, tmp_path: Path, rate: int) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=SHORT)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("saloon"), realtime=False, sample_rate=rate),
            CallerScript(utterances=[t.heard for t in SHORT]),
        )
    assert result.ok, result.error
    assert len(result.response_ms) == 2
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["sample_rate"] == rate
    speakers = [t["speaker"] for t in row["transcript"]]
    assert speakers == ["agent", "caller", "agent", "caller", "agent"]
    # Agent audio arrives at the stream's rate: ~the spoken duration, not 3x or 1/3 of it.
    agent_ms = sum(r.audio_ms for r in fake.sessions[0].replies)
    assert 0.8 * agent_ms <= result.agent_audio_ms <= 1.2 * agent_ms + 200


async def test_hindi_tenant_greets_in_hindi(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=scenario("clinic")[:1])) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("clinic"), realtime=False),
            CallerScript(utterances=[scenario("clinic")[0].heard]),
        )
    assert result.ok, result.error
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    greeting = row["transcript"][0]["text"]
    assert any("\u0900" <= ch <= "\u097f" for ch in greeting)  # Devanagari
    assert row["transcript"][1]["text"] == scenario("clinic")[0].heard


@pytest.mark.parametrize("where", ["query", "custom_parameters"])
async def test_tenant_from_query_or_custom_parameters(
    sqlite_db: Database, tmp_path: Path, where: str
) -> None:
    async with (
        FakeGeminiLive() as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        if where == "query":
            opts = CallOptions(url=bridge.url(None, "?tenant=saloon"), realtime=False)
        else:
            opts = CallOptions(
                url=bridge.url(None), realtime=False, custom_parameters={"tenant": "saloon"}
            )
        result = await place_call(opts, CallerScript(utterances=["Hello?"]))
    assert result.ok, result.error
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["tenant"] == "saloon"
    assert "Glow" in (fake.sessions[0].system_instruction or "")


async def test_concurrent_calls_are_independent(sqlite_db: Database, tmp_path: Path) -> None:
    import asyncio

    async with (
        FakeGeminiLive(script=lambda setup: CallScript(turns=SHORT)) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        results = await asyncio.gather(
            *[
                place_call(
                    CallOptions(url=bridge.url("bakery"), realtime=False),
                    CallerScript(utterances=[t.heard for t in SHORT]),
                )
                for _ in range(8)
            ]
        )
    assert all(r.ok for r in results), [r.error for r in results]
    assert len({r.call_sid for r in results}) == 8
    for r in results:
        row = await get_call(sqlite_db, r.call_sid)
        assert row is not None
        assert [t["text"] for t in row["transcript"] if t["speaker"] == "caller"] == [
            t.heard for t in SHORT
        ]
