"""Gemini Live faults on real calls: the Live double drops the connection or sends goAway at
chosen points (the model speaking, the caller speaking), and the call goes on on a new session:
the caller is answered, the audio they sent meanwhile reaches the new session, the transcript
has every turn once (a turn the model was speaking when its session was lost is kept as cut),
and the row is stored. Repeated faults end the call cleanly through the engine-failure path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from receptionist.sim.caller import CallerScript, CallOptions, CallResult, place_call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, Hold, ScriptedTurn
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.bridge_harness import running_bridge
from tests.prom import Changes

LONG = "Sure, we bake chocolate and vanilla cakes."  # 2.7 s of audio
TURNS = [
    ScriptedTurn(heard="I want a cake.", reply=LONG),
    ScriptedTurn(heard="Chocolate, please.", reply="Done."),
]
SAID = ["I would like to order a birthday cake for Saturday.", "Chocolate, please."]
# The caller waits this long after the agent's audio stops before speaking again: longer than
# a loopback reconnect, so each utterance follows the answer it waits for.
QUIET_MS = 1200


async def _call(db: Database, tmp_path: Path, fake: FakeGeminiLive, **settings: Any) -> Any:
    async with running_bridge(db, tmp_path, fake, **settings) as bridge:
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False, max_call_s=60),
            CallerScript(utterances=SAID, agent_quiet_ms=QUIET_MS, hangup_after_ms=200),
        )
    row = await get_call(db, result.call_sid)
    assert row is not None, "the call's row was not stored"
    return result, row


def _fake(failure: Failure, **kw: Any) -> FakeGeminiLive:
    return FakeGeminiLive(script=CallScript(turns=TURNS, greeting="Hello."), failure=failure, **kw)


def _found(needle: bytes, haystack: bytes) -> tuple[int, float]:
    """Where `needle` (16-bit PCM) best matches in `haystack` (byte offset), and how closely:
    the SNR in dB of the matched stretch against it."""
    x = np.frombuffer(needle, dtype="<i2").astype(np.float64)
    y = np.frombuffer(haystack, dtype="<i2").astype(np.float64)
    if len(y) < len(x):
        return len(haystack), float("-inf")
    k = int(np.argmax(np.correlate(y, x, mode="valid")))
    err = y[k : k + len(x)] - x
    return 2 * k, float(10 * np.log10(np.sum(x**2) / max(np.sum(err**2), 1e-9)))


def _first_voiced(pcm: bytes) -> int:
    """Byte offset of the first 10 ms window of 16 kHz audio loud enough to be speech."""
    x = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").astype(np.float32)
    level = np.sqrt((x.reshape(-1, 160) ** 2).mean(axis=1))
    return int(np.argmax(level >= SPEECH_RMS_THRESHOLD)) * 320


def _said(row: dict[str, Any], speaker: str) -> list[str]:
    return [t["text"] for t in row["transcript"] if t["speaker"] == speaker]


def _event(row: dict[str, Any], kind: str) -> str:
    found = [e["detail"] for e in row["events"] if e["kind"] == kind]
    assert len(found) == 1, row["events"]
    return str(found[0])


def _answered(result: CallResult) -> None:
    assert result.ok, result.error
    assert len(result.response_ms) == len(SAID)  # every turn, the one hit by the fault too


def _no_hole(row: dict[str, Any], *, cut: bool) -> None:
    """Each caller turn once, each reply in full after it; a reply lost mid-way is kept as cut."""
    assert row["status"] == "completed", (row["end_reason"], row["error"])
    assert _said(row, "caller") == [t.heard for t in TURNS]
    turns = [(t["speaker"], t["text"], bool(t.get("interrupted"))) for t in row["transcript"]]
    full = [("caller", TURNS[0].heard, False), ("agent", LONG, False)]
    if cut:  # what the caller heard of the lost reply, then the new session's whole answer
        heard = turns[2][1]
        assert turns[2][0] == "agent" and turns[2][2] and heard and LONG.startswith(heard)
        full.insert(1, ("agent", heard, True))
    full += [("caller", TURNS[1].heard, False), ("agent", TURNS[1].reply, False)]
    assert turns == [("agent", "Hello.", False), *full]


async def test_drop_while_the_model_speaks(sqlite_db: Database, tmp_path: Path) -> None:
    fake = _fake(Failure(drop_mid_reply_ms=1000))
    async with fake:
        result, row = await _call(sqlite_db, tmp_path, fake)
    _answered(result)
    first, second = fake.sessions[0], fake.sessions[1]
    assert first.faults and first.faults[0][0] == "drop"
    assert second.resumed_from == first.resumption_handles[-1]  # the greeting's
    assert second.heard == [t.heard for t in TURNS]  # heard the question again, then the next
    _no_hole(row, cut=True)
    assert "cause=dropped" in (ev := _event(row, "engine_resumed")) and "cut_turn=True" in ev


async def test_drop_while_the_caller_speaks(sqlite_db: Database, tmp_path: Path) -> None:
    fake = _fake(Failure(drop_mid_speech_ms=400), record_audio=True)
    async with fake:
        result, row = await _call(sqlite_db, tmp_path, fake)
    _answered(result)
    first, second = fake.sessions[0], fake.sessions[1]
    handle = first.resumption_handles[-1]
    assert second.resumed_from == handle
    # What the first session got after its last handle reaches the second first, in order,
    # from the caller's first word (the silence before it is kept to 1 s): the same signal
    # (the replay keeps it as mu-law at the line's 8 kHz, so not the same bytes).
    since = bytes(first.audio_pcm[first.handle_audio_bytes[handle] :])
    speech = since[_first_voiced(since) :]
    assert len(speech) >= 400 * 32  # the 400 ms of speech before the drop, at least
    offset, snr_db = _found(speech, bytes(second.audio_pcm[: 32_000 + len(speech)]))
    assert offset <= 32_000 and snr_db > 25, (offset, snr_db)
    assert "dropped_ms=0" in _event(row, "engine_resumed")
    # The second session heard the whole first utterance, not only what came after the drop.
    assert second.heard == [t.heard for t in TURNS] and not first.caller_turns
    assert second.caller_turns[0].speech_ms > 1000
    _no_hole(row, cut=False)
    assert "cause=dropped" in _event(row, "engine_resumed")


async def test_go_away_while_the_model_speaks(sqlite_db: Database, tmp_path: Path) -> None:
    fake = _fake(Failure(go_away_mid_reply_ms=300, go_away_time_left="10s"))
    async with fake:
        result, row = await _call(sqlite_db, tmp_path, fake)
    _answered(result)
    first, second = fake.sessions[0], fake.sessions[1]
    assert first.go_away_sent_at is not None
    # The reply is finished on the old session; the switch comes right after, from the handle
    # that includes it, well before the time is up.
    assert first.replies[-1].completed and first.heard == [TURNS[0].heard]
    assert second.resumed_from == first.resumption_handles[-1] and second.heard == [TURNS[1].heard]
    assert first.close_code == 1000  # closed by the bridge, not by the service's deadline
    _no_hole(row, cut=False)
    assert "cause=go_away" in (ev := _event(row, "engine_resumed")) and "cut_turn=False" in ev
    assert "engine_go_away" in {e["kind"] for e in row["events"]}


async def test_go_away_when_the_turn_outlasts_the_time_left(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # The reply stops at 500 ms (a model still speaking) and goAway gives 1.5 s: the engine
    # switches 1 s before the time is up, mid-turn, from the greeting's handle.
    hold = Hold(after_ms=500)
    turns = [ScriptedTurn(TURNS[0].heard, LONG, hold=hold), TURNS[1]]
    failure = Failure(go_away_mid_reply_ms=200, go_away_time_left="1.5s")
    fake = FakeGeminiLive(script=CallScript(turns=turns, greeting="Hello."), failure=failure)
    async with fake, running_bridge(sqlite_db, tmp_path, fake) as bridge:
        call = asyncio.create_task(
            place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False, max_call_s=60),
                CallerScript(utterances=SAID, agent_quiet_ms=QUIET_MS, hangup_after_ms=200),
            )
        )
        await hold.wait_reached()
        await fake.wait_closed(0, within_s=10)  # the engine moves off it on its own
        hold.release()  # the resumed session answers the question in full
        result = await call
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None
    _answered(result)
    first, second = fake.sessions[0], fake.sessions[1]
    assert not first.replies[-1].completed  # its turn never ended: lost with the session
    assert second.resumed_from == first.resumption_handles[-1]
    _no_hole(row, cut=True)
    assert "cause=go_away" in (ev := _event(row, "engine_resumed")) and "cut_turn=True" in ev


async def test_refused_resumption_starts_afresh_with_the_conversation(
    sqlite_db: Database, tmp_path: Path
) -> None:
    fake = _fake(Failure(drop_mid_reply_ms=1000, refuse_resumption=True))
    async with fake:
        result, row = await _call(sqlite_db, tmp_path, fake)
    _answered(result)
    refused, fresh = fake.sessions[1], fake.sessions[2]
    assert refused.close_code == 1007 and refused.resumed_from is None
    # A fresh session told the conversation before the lost turn as its initial history.
    assert fresh.resumed_from is None and fresh.history[-1] == {"role": "model", "text": "Hello."}
    assert fresh.heard == [t.heard for t in TURNS]
    _no_hole(row, cut=True)
    assert "attempts=2" in _event(row, "engine_reconnected")


async def test_sessions_that_keep_dropping_end_the_call(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # Every session is cut 400 ms into the caller's speech, the resumed ones too: each
    # replacement opens, then dies before the model can answer, and the engine gives up.
    fake = _fake(Failure(drop_mid_speech_ms=400, fault_sessions=10**9, refuse_resumption=True))
    async with fake:
        result, row = await _call(
            sqlite_db, tmp_path, fake, gemini_reconnect_attempts=2, gemini_reconnect_deadline_s=5
        )
    assert result.closed_by == "server" and row["status"] == "failed"
    assert "lost before the model could finish a turn" in row["error"]
    assert [t["speaker"] for t in row["transcript"]] == ["agent"]  # the greeting, and no hole


async def test_repeated_drops_end_the_call_cleanly(sqlite_db: Database, tmp_path: Path) -> None:
    changes = Changes()
    fake = _fake(Failure(drop_mid_reply_ms=1000, fail_sessions_from=1))
    async with fake:
        result, row = await _call(
            sqlite_db, tmp_path, fake, gemini_reconnect_attempts=3, gemini_reconnect_deadline_s=5
        )
    assert result.closed_by == "server" and result.close_code == 1000
    assert len(fake.sessions) == 4  # the first, then three tries
    assert changes("receptionist_engine_resumptions_total", outcome="failed") == 1
    assert row["status"] == "failed" and row["end_reason"] == "engine_error"
    assert "no new session after 3 attempts" in row["error"]
    # Saved with what was said: the greeting, the question, and the reply marked unfinished.
    turns = row["transcript"]
    assert [t["speaker"] for t in turns] == ["agent", "caller", "agent"]
    assert turns[1]["text"] == TURNS[0].heard
    assert turns[2].get("incomplete") and LONG.startswith(turns[2]["text"])
