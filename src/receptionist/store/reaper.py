"""A server killed mid-call, part two: the reaper of lost calls (checkpoints.py is part one).

A reaper closes the live calls of a process that is gone: its heartbeat stopped longer than
`lost_after_s` ago, or its row is gone, or (on the same host, in the same pid space) its pid no
longer runs or is now another process's. Each such call is closed once, whoever else reaps at
the same moment (a conditional UPDATE ... WHERE status = 'in_progress', serialised by the row
lock on PostgreSQL and by BEGIN IMMEDIATE on SQLite): status `failed`, end reason
`server_lost`, the last checkpoint as its transcript, and handed to the post-call pipeline
exactly as a call that ended normally (`calls.enter_pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from receptionist.store.calls import enter_pipeline, upsert_token_usage
from receptionist.store.checkpoints import (
    ServerProcess,
    pid_running,
    provably_dead,
    usage_from_json,
)
from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import (
    CALL_STATUS_FAILED,
    CALL_STATUS_IN_PROGRESS,
    END_REASON_SERVER_LOST,
    Stage,
    call_details,
    server_processes,
    utcnow,
)
from receptionist.store.search import response_times, search_document
from receptionist.untrusted import without_nul
from receptionist.usage import TokenUsage

REAP_BATCH = 200  # calls closed per transaction: a reaper never holds the lock for long


@dataclass(slots=True)
class LostCall:
    """A live call of a process that is gone, as it will be closed."""

    call_sid: str
    session_id: str
    tenant: str | None
    started_at: datetime | None
    answered_at: datetime | None
    transcript: list[dict[str, Any]]
    last_seen: datetime  # the last sign of life of its server (heartbeat or checkpoint)
    why: str
    usage: list[TokenUsage] = field(default_factory=list)
    # set for a call read from a checkpoint file: when it was taken (see _amend)
    checkpoint_at: datetime | None = None


def _closed_values(lost: LostCall, now: datetime) -> dict[str, Any]:
    transcript = without_nul(list(lost.transcript or []))
    ended = max(lost.last_seen, lost.started_at) if lost.started_at else lost.last_seen
    duration = (
        max(0, round((ended - lost.started_at).total_seconds() * 1000)) if lost.started_at else None
    )
    checkpointed = {"checkpoint_at": lost.checkpoint_at} if lost.checkpoint_at else {}
    return {
        **checkpointed,
        "status": CALL_STATUS_FAILED,
        "end_reason": END_REASON_SERVER_LOST,
        "error": lost.why[:300],
        "transcript": transcript,
        "search_text": search_document(transcript),
        "stats": {"response_ms": response_times(transcript)},
        "answered_at": lost.answered_at,
        "ended_at": ended,
        "duration_ms": duration,
        "updated_at": now,
        **enter_pipeline(now),
    }


async def _close(conn: Any, dialect: str, lost: LostCall, now: datetime) -> bool:
    """Close one lost call in the caller's transaction; False when it is not ours to close
    (ended meanwhile, reaped by another server, or another stream's row)."""
    c = call_details.c
    values = _closed_values(lost, now)
    closed = await conn.execute(
        sa.update(call_details)
        .where(
            c.call_sid == lost.call_sid,
            c.session_id == lost.session_id,
            c.status == CALL_STATUS_IN_PROGRESS,
        )
        .values(**values)
        .returning(c.id)
    )
    if closed.first() is not None:
        await upsert_token_usage(conn, lost.call_sid, lost.tenant, lost.usage)
        return True
    # no row at all: the call was only ever checkpointed to disk (the database was away)
    inserted = await conn.execute(
        upsert_insert(dialect, call_details)
        .values(
            session_id=lost.session_id,
            call_sid=lost.call_sid,
            tenant=lost.tenant,
            custom_parameters={},
            started_at=lost.started_at,
            created_at=now,
            **values,
        )
        .on_conflict_do_nothing()
        .returning(c.id)
    )
    if inserted.first() is None:
        if lost.checkpoint_at is not None:
            await _amend(conn, lost, now)
        return False
    await upsert_token_usage(conn, lost.call_sid, lost.tenant, lost.usage)
    return True


async def _amend(conn: Any, lost: LostCall, now: datetime) -> None:
    """Another server closed this call from the database's checkpoint while a newer one was
    on this host's disk (this host could not reach the database): the newer transcript
    replaces the older one if the pipeline has not started on the call yet."""
    c = call_details.c
    transcript = without_nul(list(lost.transcript or []))
    amended = await conn.execute(
        sa.update(call_details)
        .where(
            c.call_sid == lost.call_sid,
            c.session_id == lost.session_id,
            c.end_reason == END_REASON_SERVER_LOST,
            c.stage == Stage.TRANSCRIPT_SAVED,
            c.lease_owner.is_(None),
            sa.or_(c.checkpoint_at.is_(None), c.checkpoint_at < lost.checkpoint_at),
        )
        .values(
            transcript=transcript,
            search_text=search_document(transcript),
            stats={"response_ms": response_times(transcript)},
            checkpoint_at=lost.checkpoint_at,
            updated_at=now,
        )
        .returning(c.id)
    )
    if amended.first() is not None:
        await upsert_token_usage(conn, lost.call_sid, lost.tenant, lost.usage)


async def close_lost_calls(
    db: Database, calls: Sequence[LostCall], now: datetime | None = None
) -> list[str]:
    """Close these calls (each at most once, whoever else tries); the call_sids closed here."""
    now = now or utcnow()
    done: list[str] = []
    for i in range(0, len(calls), REAP_BATCH):
        async with db.begin() as conn:
            for lost in calls[i : i + REAP_BATCH]:
                if await _close(conn, db.dialect, lost, now):
                    done.append(lost.call_sid)
    return done


def _server(row: Any) -> ServerProcess:
    return ServerProcess(
        id=row.id, host=row.host, pid=row.pid, pid_space=row.pid_space, started_at=row.started_at
    )


async def reap_lost_calls(
    db: Database,
    me: ServerProcess,
    *,
    lost_after_s: float,
    max_call_s: float,
    pid_running: Callable[[int], bool] = pid_running,
    now: datetime | None = None,
) -> list[str]:
    """Close the live calls of every server process that is gone; the call_sids closed here.

    Gone: its heartbeat is older than `lost_after_s`; or it is provably dead on this host
    (:func:`provably_dead`); or its row is gone and the call started more than `lost_after_s`
    ago (a process registers before its first call; the age bound covers one that registers
    again after an outage). Calls with no server at all (rows written before servers had ids)
    are closed once they are older than any call can be (`max_call_s` + `lost_after_s`).
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=lost_after_s)
    legacy = now - timedelta(seconds=max_call_s + lost_after_s)
    async with db.session() as conn:
        servers = [_server(r) for r in (await conn.execute(sa.select(server_processes))).all()]
    dead = [p.id for p in servers if provably_dead(p, me, pid_running=pid_running)]
    pick = _lost_calls_query(me, cutoff=cutoff, legacy=legacy, dead=dead, dialect=db.dialect)
    lost: list[str] = []
    while True:
        async with db.begin() as conn:
            rows = (await conn.execute(pick)).all()
            closed = 0
            for r in rows:
                if await _close(conn, db.dialect, _lost_call(r, now), now):
                    lost.append(r.call_sid)
                    closed += 1
        if len(rows) < REAP_BATCH or closed == 0:
            break
    await _forget_servers(db, me, cutoff=cutoff, dead=dead)
    return lost


def _lost_calls_query(
    me: ServerProcess, *, cutoff: datetime, legacy: datetime, dead: list[str], dialect: str
) -> Any:
    """The next batch of live calls whose server is gone (see reap_lost_calls), oldest first."""
    s, c = server_processes.c, call_details.c
    pick = (
        sa.select(
            c.call_sid,
            c.session_id,
            c.tenant,
            c.started_at,
            c.answered_at,
            c.transcript,
            c.stats,
            c.checkpoint_at,
            c.server_id,
            s.heartbeat_at,
            s.host,
            s.pid,
        )
        .select_from(call_details.outerjoin(server_processes, s.id == c.server_id))
        .where(
            c.status == CALL_STATUS_IN_PROGRESS,
            c.stage == Stage.LIVE,
            sa.or_(
                sa.and_(c.server_id.is_(None), c.started_at < legacy),
                sa.and_(
                    c.server_id.is_not(None),
                    c.server_id != me.id,
                    sa.or_(
                        sa.and_(s.id.is_(None), c.started_at < cutoff),
                        s.heartbeat_at < cutoff,
                        c.server_id.in_(dead),
                    ),
                ),
            ),
        )
        .order_by(c.id)
        .limit(REAP_BATCH)
    )
    if dialect == "postgresql":  # two reapers split the rows instead of queueing
        pick = pick.with_for_update(skip_locked=True, of=call_details)
    return pick


def _lost_call(r: Any, now: datetime) -> LostCall:
    """A row of _lost_calls_query as the call to close."""
    seen = [t for t in (r.heartbeat_at, r.checkpoint_at) if t is not None]
    server = f"{r.host}:{r.pid}" if r.host else f"{r.server_id or 'unknown'} (gone)"
    return LostCall(
        call_sid=r.call_sid,
        session_id=r.session_id,
        tenant=r.tenant,
        started_at=r.started_at,
        answered_at=r.answered_at,
        transcript=list(r.transcript or []),
        last_seen=max(seen) if seen else (r.started_at or now),
        why=f"server process {server} stopped while the call was live",
        usage=usage_from_json(r.stats.get("usage") if isinstance(r.stats, dict) else 0),
    )


async def _forget_servers(
    db: Database, me: ServerProcess, *, cutoff: datetime, dead: list[str]
) -> None:
    """The dead processes' rows go; their calls are closed (or another reaper is closing them)."""
    s = server_processes.c
    async with db.begin() as conn:
        await conn.execute(
            sa.delete(server_processes).where(
                s.id != me.id, sa.or_(s.heartbeat_at < cutoff, s.id.in_(dead))
            )
        )


__all__ = ["LostCall", "close_lost_calls", "reap_lost_calls"]
