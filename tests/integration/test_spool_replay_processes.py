"""Several processes replaying one spool folder at once (`serve --workers N` all replay at
start-up): each spooled call is written once, and a clashing one is set aside once, without
failing the replay of the other process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from receptionist.bridge.recorder import CONFLICTS, CallRecorder
from receptionist.store.calls import FinishedCall, NewCall, create_call, get_call
from receptionist.store.db import Database

TRANSCRIPT = [{"speaker": "caller", "text": "Two loaves, please.", "start_ms": 0, "end_ms": 900}]


def spooled(recorder: CallRecorder, call_sid: str, session_id: str) -> Path:
    finished = FinishedCall(
        call_sid=call_sid,
        status="completed",
        session_id=session_id,
        transcript=TRANSCRIPT,
        tenant="bakery",
    )
    return recorder._spool(finished, recorder.spool_dir)  # as a failed save writes it


async def test_two_replays_at_once_write_a_spooled_call_once(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    # two recorders stand for two processes: a lock on a file is per open file, so they
    # contend for it exactly as two processes would
    first, second = CallRecorder(db, spool), CallRecorder(db, spool)
    spooled(first, "CAspool1", "sess-1")
    saved = await asyncio.gather(first.replay_spool(), second.replay_spool())
    assert sorted(saved) == [0, 1]
    assert not list(spool.glob("*.json"))
    row = await get_call(db, "CAspool1")
    assert row is not None and row["session_id"] == "sess-1" and row["transcript"] == TRANSCRIPT


async def test_a_clashing_spooled_call_is_set_aside_once_by_either(
    db: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    assert await create_call(db, NewCall(call_sid="CAspool2", session_id="owner", tenant="bakery"))
    first, second = CallRecorder(db, spool), CallRecorder(db, spool)
    path = spooled(first, "CAspool2", "another-stream")
    saved = await asyncio.gather(first.replay_spool(), second.replay_spool())  # neither raises
    assert saved == [0, 0]
    assert [p.name for p in (spool / CONFLICTS).iterdir()] == [path.name]
    assert not list(spool.glob("*.json"))
    row = await get_call(db, "CAspool2")
    assert row is not None and row["session_id"] == "owner"  # the owner's row is untouched


# A call's end as the recorder spooled it before the start's details and the token figures
# were each defined once (store/calls.StartDetails, usage.TokenUsage): byte for byte what that
# code wrote, so a spool left by an older server is still replayed after an upgrade.
OLDER_SPOOL_FILE = (
    b'{"call_sid":"CAoldspool","status":"completed","session_id":"sess-old",'
    b'"end_reason":"caller_disconnected","error":null,"transcript":[{"speaker":"caller",'
    b'"text":"Two loaves, please.","start_ms":0,"end_ms":900}],"stats":{"frames_in":10},'
    b'"events":[],"answered_at":"2026-12-07T10:00:01+00:00","ended_at":"2026-12-07T10:00:42+00:00",'
    b'"usage":[{"model_name":"gemini-live-test","purpose":"live","input_tokens":900,'
    b'"output_tokens":300,"input_audio_tokens":800,"input_text_tokens":100,'
    b'"output_audio_tokens":300,"output_text_tokens":0,"total_tokens":1200,"details":null}],'
    b'"tenant":"bakery","started_at":"2026-12-07T10:00:00+00:00","stream_sid":"MZold",'
    b'"from_number":"09812345678","to_number":"08047112233","direction":"inbound",'
    b'"custom_parameters":{"lang":"en"},"sample_rate":8000,"engine":"gemini-live",'
    b'"model":"gemini-live-test"}'
)


async def test_a_file_spooled_by_an_older_server_is_replayed(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "CAoldspool-0a1b2c3d.json").write_bytes(OLDER_SPOOL_FILE)
    assert await CallRecorder(db, spool).replay_spool() == 1
    assert not list(spool.glob("*.json"))
    row = await get_call(db, "CAoldspool")
    assert row is not None and row["session_id"] == "sess-old" and row["transcript"] == TRANSCRIPT
    start = tuple(row[k] for k in ("tenant", "from_number", "stream_sid", "engine", "sample_rate"))
    assert start == ("bakery", "09812345678", "MZold", "gemini-live", 8000)
    assert row["custom_parameters"] == {"lang": "en"}
    (usage,) = row["usage"]
    assert (usage["model_name"], usage["input_tokens"], usage["total_tokens"]) == (
        "gemini-live-test",
        900,
        1200,
    )
    assert usage["input_audio_tokens"] == 800 and usage["output_audio_tokens"] == 300
