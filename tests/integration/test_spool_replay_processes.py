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
