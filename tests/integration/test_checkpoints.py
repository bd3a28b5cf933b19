"""Checkpoints, heartbeats and the reaper of lost calls, on SQLite and PostgreSQL.

The whole story with real `serve` processes killed with SIGKILL is in test_server_lost.py;
here each rule is shown on its own: a late checkpoint never overwrites an ended call, two
reapers close each call once, another machine's stale heartbeat is noticed by the periodic
pass, and a checkpoint written to disk while the database was away is what recovery uses.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from receptionist.bridge.checkpointer import Checkpointer
from receptionist.store.bookings import SlotHold, find_bookings, hold_slot
from receptionist.store.calls import (
    FinishedCall,
    NewCall,
    create_call,
    finish_call,
    get_call,
)
from receptionist.store.checkpoints import (
    Checkpoint,
    ServerProcess,
    heartbeat_and_checkpoint,
    register_server,
)
from receptionist.store.db import Database
from receptionist.store.reaper import reap_lost_calls
from receptionist.store.schema import server_processes, utcnow
from receptionist.usage import TokenUsage
from tests.pg import free_port
from tests.prom import Changes

TURNS = [
    {"speaker": "agent", "text": "Hello, Sweet Crumbs bakery!", "start_ms": 0, "end_ms": 900},
    {"speaker": "caller", "text": "Six brownies please", "start_ms": 1500, "end_ms": 2600},
]
SPENT = [TokenUsage(model_name="gemini-live-test", input_tokens=900, output_tokens=300)]
FINAL = [*TURNS, {"speaker": "agent", "text": "Done!", "start_ms": 3000, "end_ms": 3500}]


def server(host: str = "other-machine", pid: int = 4242, **kw: Any) -> ServerProcess:
    return ServerProcess(
        id=kw.pop("id", f"srv-{host}-{pid}"),
        host=host,
        pid=pid,
        pid_space=kw.pop("pid_space", "space"),
        started_at=kw.pop("started_at", utcnow() - timedelta(minutes=5)),
    )


async def live_call(db: Database, sid: str, owner: ServerProcess) -> NewCall:
    new = NewCall(call_sid=sid, tenant="bakery", server_id=owner.id, from_number="+919812300001")
    assert await create_call(db, new)
    return new


def checkpoint(new: NewCall, transcript: list[dict[str, Any]], **kw: Any) -> Checkpoint:
    return Checkpoint(
        call_sid=new.call_sid,
        session_id=new.session_id,
        tenant=new.tenant,
        started_at=new.started_at,
        transcript=transcript,
        **kw,
    )


async def live_tokens(db: Database, sid: str) -> list[tuple[str, int, int]]:
    """The call's ai_token_usage rows of the live model: (model, input, output)."""
    row = await get_call(db, sid)
    assert row is not None
    return [
        (u["model_name"], u["input_tokens"], u["output_tokens"])
        for u in row["usage"]
        if u["purpose"] == "live"
    ]


async def beat_at(db: Database, who: ServerProcess, seconds_ago: float) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.update(server_processes)
            .where(server_processes.c.id == who.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds_ago))
        )


async def test_checkpoint_is_batched_with_the_heartbeat_and_never_overwrites_an_ended_call(
    db: Database,
) -> None:
    me = server()
    ended, live = await live_call(db, "CAended", me), await live_call(db, "CAlive", me)
    await heartbeat_and_checkpoint(db, me, [checkpoint(ended, TURNS), checkpoint(live, TURNS)])
    row = await get_call(db, "CAlive")
    assert row is not None
    assert (row["transcript"], row["status"], row["server_id"]) == (TURNS, "in_progress", me.id)
    assert row["checkpoint_at"] is not None

    await finish_call(
        db,
        FinishedCall(
            call_sid="CAended", session_id=ended.session_id, status="completed", transcript=FINAL
        ),
    )
    # a checkpoint snapshotted before the end, written after it: the end stays
    await heartbeat_and_checkpoint(db, me, [checkpoint(ended, TURNS[:1])])
    row = await get_call(db, "CAended")
    assert row is not None
    assert (row["transcript"], row["status"], row["stage"]) == (
        FINAL,
        "completed",
        "transcript_saved",
    )
    # and another stream reusing the sid never writes into this row
    other = NewCall(call_sid="CAlive", tenant="bakery")
    await heartbeat_and_checkpoint(db, me, [checkpoint(other, [])])
    row = await get_call(db, "CAlive")
    assert row is not None and row["transcript"] == TURNS


async def test_two_reapers_racing_close_each_call_once(db: Database) -> None:
    dead = server()
    await register_server(db, dead)
    sids = [f"CArace{i:02d}" for i in range(12)]
    for sid in sids:
        new = await live_call(db, sid, dead)
        cp = checkpoint(new, TURNS, usage=SPENT, row_written=True)
        await heartbeat_and_checkpoint(db, dead, [cp])
    await beat_at(db, dead, 600)

    # two servers, each with its own connection pool, reaping at the same moment
    other = Database(db.url)
    try:
        a, b = server("a", 1), server("b", 2)
        won = await asyncio.gather(
            *(
                reap_lost_calls(d, me, lost_after_s=60, max_call_s=600)
                for d, me in ((db, a), (other, b))
                for _ in range(2)
            )
        )
    finally:
        await other.dispose()
    closed = [sid for w in won for sid in w]
    assert sorted(closed) == sids  # every call once, none twice
    for sid in sids:
        row = await get_call(db, sid)
        assert row is not None
        assert (row["status"], row["end_reason"], row["stage"], row["attempts"]) == (
            "failed",
            "server_lost",
            "transcript_saved",
            0,
        )
        assert row["transcript"] == TURNS and row["ended_at"] is not None
        assert "other-machine:4242" in row["error"]
        # the live model's tokens, as checkpointed, are on the call once (its cost follows)
        assert await live_tokens(db, sid) == [("gemini-live-test", 900, 300)]
    async with db.session() as conn:  # the dead process's row went with its calls
        assert (await conn.execute(sa.select(server_processes.c.id))).scalars().all() == []


@dataclass
class Held:
    """A live call as the checkpointer sees one (CallSession.checkpoint)."""

    cp: Checkpoint

    def checkpoint_version(self) -> int:
        return len(self.cp.transcript)

    def checkpoint(self) -> Checkpoint:
        return self.cp


async def test_periodic_pass_reaps_another_machines_stale_heartbeat_only(
    db: Database, tmp_path: Path
) -> None:
    gone, alive = server("machine-gone"), server("machine-alive")
    for who in (gone, alive):
        await register_server(db, who)
    await live_call(db, "CAgone", gone)
    await live_call(db, "CAalive", alive)
    holds = {}  # a slot each call held: whether the caller heard of it died with its server
    for i, sid in enumerate(("CAgone", "CAalive")):
        start = utcnow() + timedelta(days=1, hours=i)
        hold = SlotHold("bakery", "x", start, start + timedelta(hours=1), timedelta(hours=1), sid)
        held = await hold_slot(db, hold)
        assert held is not None
        holds[sid] = held.reference
    me = ServerProcess.this_process()
    reaped: list[str] = []
    seen = asyncio.Event()
    changes = Changes()

    def on_reaped(sids: list[str]) -> None:
        reaped.extend(sids)
        seen.set()

    keeper = Checkpointer(
        db,
        {},
        tmp_path,
        interval_s=0.05,
        lost_after_s=30,
        reap_interval_s=0.05,
        max_call_s=600,
        on_reaped=on_reaped,
        me=me,
    )
    await keeper.start()
    assert reaped == []  # both machines beat recently
    stop = asyncio.Event()
    task = asyncio.create_task(keeper.run(stop))
    try:
        await beat_at(db, gone, 120)  # machine-gone stops beating; machine-alive goes on
        async with asyncio.timeout(30):
            await seen.wait()
    finally:
        stop.set()
        await task
    assert reaped == ["CAgone"]
    assert changes("receptionist_calls_server_lost_total") == 1
    gone_row, alive_row = await get_call(db, "CAgone"), await get_call(db, "CAalive")
    assert gone_row is not None and alive_row is not None
    assert (gone_row["end_reason"], gone_row["stage"]) == ("server_lost", "transcript_saved")
    assert (alive_row["status"], alive_row["stage"]) == ("in_progress", "live")
    # the lost call's hold is released, not confirmed; the live call's is still held
    for sid, status in (("CAgone", "expired"), ("CAalive", "pending")):
        [row] = await find_bookings(db, "bakery", reference=holds[sid])
        assert row.status == status, sid
    await keeper.close()
    async with db.session() as conn:
        ids = set((await conn.execute(sa.select(server_processes.c.id))).scalars())
    assert ids == {alive.id}  # this one unregistered on close, the dead one was removed


def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    done = subprocess.run(["true"], check=True)
    assert done.returncode == 0
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_checkpoint_on_disk_while_the_database_is_away_is_used_on_recovery(
    db: Database, tmp_path: Path
) -> None:
    here = ServerProcess.this_process()
    dying = ServerProcess(
        id="srv-dying",
        host=here.host,
        pid=dead_pid(),
        pid_space=here.pid_space,
        started_at=utcnow(),
    )
    # one call's row was written (with an older checkpoint), one call's never was
    await register_server(db, dying)
    written = await live_call(db, "CAwritten", dying)
    await heartbeat_and_checkpoint(db, dying, [checkpoint(written, TURNS[:1])])
    never = NewCall(call_sid="CAnever", tenant="bakery")

    away = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/gone")
    try:
        lost = Checkpointer(
            away,
            {
                "CAwritten": Held(checkpoint(written, TURNS)),
                "CAnever": Held(checkpoint(never, FINAL, usage=SPENT)),
            },
            tmp_path,
            interval_s=0.05,
            lost_after_s=30,
            reap_interval_s=30,
            max_call_s=600,
            me=dying,
        )
        await lost.tick()  # the database refuses: the file holds both calls
    finally:
        await away.dispose()
    assert lost.path.is_file()

    # a new server on this host: the dying process's pid is not running, so at once
    reaped: list[str] = []
    fresh = Checkpointer(
        db,
        {},
        tmp_path,
        interval_s=5,
        lost_after_s=30,
        reap_interval_s=30,
        max_call_s=600,
        on_reaped=reaped.extend,
        me=here,
    )
    await fresh.start()
    assert sorted(reaped) == ["CAnever", "CAwritten"]
    assert not lost.path.exists()
    for sid, transcript in (("CAwritten", TURNS), ("CAnever", FINAL)):
        row = await get_call(db, sid)
        assert row is not None
        assert (row["status"], row["end_reason"], row["stage"]) == (
            "failed",
            "server_lost",
            "transcript_saved",
        )
        assert row["transcript"] == transcript  # the disk's, newer than the database's
    assert await live_tokens(db, "CAnever") == [("gemini-live-test", 900, 300)]
    written_row = await get_call(db, "CAwritten")
    assert written_row is not None and written_row["from_number"] == "+919812300001"
    assert await fresh.reap() == []  # nothing twice


async def test_a_call_the_database_refuses_stops_neither_the_heartbeat_nor_the_others(
    db: Database, tmp_path: Path
) -> None:
    me = ServerProcess.this_process()
    good, bad = await live_call(db, "CAgood", me), await live_call(db, "CAbad", me)
    # text no UTF-8 encoder takes (a lone surrogate, as a JSON "\ud800" escape decodes)
    poison = [{"speaker": "caller", "text": "order \ud800", "start_ms": 0, "end_ms": 1}]
    calls = {
        "CAgood": Held(replace(checkpoint(good, TURNS), row_written=True)),
        "CAbad": Held(replace(checkpoint(bad, poison), row_written=True)),
    }
    keeper = Checkpointer(
        db, calls, tmp_path, interval_s=5, lost_after_s=30, reap_interval_s=30, max_call_s=9, me=me
    )
    await keeper.tick()
    good_row = await get_call(db, "CAgood")
    assert good_row is not None and good_row["transcript"] == TURNS
    async with db.session() as conn:
        beat = await conn.scalar(
            sa.select(server_processes.c.heartbeat_at).where(server_processes.c.id == me.id)
        )
    assert beat is not None
    assert keeper._refused == {"CAbad"}


async def test_a_server_taken_for_dead_registers_again_and_says_so(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    me = ServerProcess.this_process()
    keeper = Checkpointer(
        db, {}, tmp_path, interval_s=5, lost_after_s=30, reap_interval_s=30, max_call_s=9, me=me
    )
    await keeper.tick()
    async with db.begin() as conn:  # what another server's reaper does to a stale heartbeat
        await conn.execute(sa.delete(server_processes))
    await keeper.tick()
    async with db.session() as conn:
        ids = (await conn.execute(sa.select(server_processes.c.id))).scalars().all()
    assert ids == [me.id]
    assert "was taken for dead" in caplog.text


async def test_rows_stuck_from_before_servers_had_ids_are_closed_once_no_call_can_be_that_long(
    db: Database,
) -> None:
    """Calls left `in_progress` by a server killed before this upgrade name no server: they
    are closed once older than any call can be (MAX_CALL_DURATION_S + SERVER_LOST_AFTER_S)."""
    old = NewCall(call_sid="CAstuck", tenant="bakery", started_at=utcnow() - timedelta(hours=2))
    young = NewCall(call_sid="CAyoung", tenant="bakery", started_at=utcnow() - timedelta(minutes=5))
    for new in (old, young):
        assert await create_call(db, new)
    me = ServerProcess.this_process()
    assert await reap_lost_calls(db, me, lost_after_s=60, max_call_s=600) == ["CAstuck"]
    stuck, live = await get_call(db, "CAstuck"), await get_call(db, "CAyoung")
    assert stuck is not None and live is not None
    assert (stuck["end_reason"], stuck["stage"], stuck["transcript"]) == (
        "server_lost",
        "transcript_saved",
        [],
    )
    assert live["status"] == "in_progress"


async def test_a_newer_checkpoint_on_disk_amends_a_call_another_server_closed_from_an_older_one(
    db: Database, tmp_path: Path
) -> None:
    here = ServerProcess.this_process()
    dying = replace(here, id="srv-cut-off", pid=dead_pid())
    await register_server(db, dying)
    new = await live_call(db, "CAcutoff", dying)
    await heartbeat_and_checkpoint(db, dying, [checkpoint(new, TURNS[:1], row_written=True)])
    # this host loses the database: the newer checkpoint goes to disk
    away = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/gone")
    try:
        cut_off = Checkpointer(
            away,
            {"CAcutoff": Held(checkpoint(new, TURNS, usage=SPENT, row_written=True))},
            tmp_path,
            interval_s=5,
            lost_after_s=30,
            reap_interval_s=30,
            max_call_s=600,
            me=dying,
        )
        await cut_off.tick()
    finally:
        await away.dispose()
    # another machine takes the silent server for dead and closes the call from the database
    await beat_at(db, dying, 600)
    elsewhere = server("machine-b", 7)
    assert await reap_lost_calls(db, elsewhere, lost_after_s=60, max_call_s=600) == ["CAcutoff"]
    # this host comes back: the newer transcript replaces the older, the call is not reaped again
    fresh = Checkpointer(
        db, {}, tmp_path, interval_s=5, lost_after_s=30, reap_interval_s=30, max_call_s=600, me=here
    )
    assert await fresh.reap() == []
    row = await get_call(db, "CAcutoff")
    assert row is not None
    assert (row["end_reason"], row["stage"], row["transcript"]) == (
        "server_lost",
        "transcript_saved",
        TURNS,
    )
    assert await live_tokens(db, "CAcutoff") == [("gemini-live-test", 900, 300)]
    assert not cut_off.path.exists()


async def test_the_end_fills_the_callers_details_a_checkpoint_created_row_lacks(
    db: Database,
) -> None:
    """The start write failed (database away), a checkpoint created the row once it was back
    (with no caller: a checkpoint does not carry one), then the call ended: the end brings the
    start's details and they land on the row, so the caller can still get the confirmation."""
    me = server()
    await register_server(db, me)
    never_written = NewCall(call_sid="CAlate", tenant="bakery", server_id=me.id)
    await heartbeat_and_checkpoint(db, me, [checkpoint(never_written, TURNS)])
    row = await get_call(db, "CAlate")
    assert row is not None and row["from_number"] is None and row["transcript"] == TURNS

    await finish_call(
        db,
        FinishedCall(
            call_sid="CAlate",
            session_id=never_written.session_id,
            status="completed",
            transcript=FINAL,
            stream_sid="MZlate",
            from_number="+919812300009",
            to_number="08047112233",
            sample_rate=8000,
            engine="gemini-live",
        ),
    )
    row = await get_call(db, "CAlate")
    assert row is not None
    assert (row["from_number"], row["stream_sid"], row["sample_rate"], row["engine"]) == (
        "+919812300009",
        "MZlate",
        8000,
        "gemini-live",
    )
    assert row["transcript"] == FINAL and row["caller_key"]
