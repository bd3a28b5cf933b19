"""A server killed mid-call, part one: heartbeats and transcript checkpoints.

Every `serve` process has a row in `server_processes` (a fresh id per start) whose
`heartbeat_at` it moves forward every checkpoint interval, in the same transaction as the
transcripts of its live calls that changed since the last round (one transaction per process
per interval, whatever the number of calls). A checkpoint goes into the call's own
`transcript` and only while the call is `in_progress` and owned by the same stream: the end of
the call, which sets its final status under the row's lock, always wins over a late checkpoint.
The reaper of the calls a dead process leaves is `store/reaper.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import (
    CALL_STATUS_IN_PROGRESS,
    Stage,
    call_details,
    server_processes,
    utcnow,
)
from receptionist.untrusted import without_nul
from receptionist.usage import FIGURES, TokenUsage

CHECKPOINT_SLICE = 10  # calls per statement of a checkpoint's one transaction (~0.5 ms each)


def _read(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip()
    return ""


def this_pid_space() -> str:
    """This boot and this process's pid namespace ("" where /proc does not tell): two processes
    with the same value see the same pids, so one can check whether the other still runs."""
    ns = ""
    with contextlib.suppress(OSError):
        ns = os.readlink("/proc/self/ns/pid")
    boot = _read("/proc/sys/kernel/random/boot_id")
    return f"{boot}/{ns}" if boot or ns else ""


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """One start of one `serve` process."""

    id: str
    host: str
    pid: int
    pid_space: str
    started_at: datetime

    @classmethod
    def this_process(cls) -> ServerProcess:
        return cls(
            id=str(uuid.uuid4()),
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            pid_space=this_pid_space(),
            started_at=utcnow(),
        )

    def as_row(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "pid_space": self.pid_space,
            "started_at": self.started_at,
            "heartbeat_at": now,
        }


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    except OSError:
        return True  # cannot tell: not provably dead
    return True


def provably_dead(
    other: ServerProcess, me: ServerProcess, *, pid_running: Callable[[int], bool] = pid_running
) -> bool:
    """True when this process can tell, without waiting for a heartbeat, that `other` is gone:
    it ran on this host in this pid space and its pid is no longer running, or is our own pid
    now; or it was an earlier pid 1 of this host (a container restarted: a new pid namespace,
    pid 1 again, a new start id). Otherwise the heartbeat decides.

    Containers are told apart by host name: two containers given one hostname on purpose,
    each its server as pid 1, would take each other's calls for lost (Docker, Compose,
    Kubernetes and Railway give each container its own unless told otherwise)."""
    if other.id == me.id or other.host != me.host:
        return False
    if other.pid_space != me.pid_space:
        return other.pid == me.pid == 1 and other.started_at < me.started_at
    if other.pid == me.pid:
        return True
    return not pid_running(other.pid)


# --- heartbeat and checkpoints -----------------------------------------------------------------


@dataclass(slots=True)
class Checkpoint:
    """A live call's transcript so far, and what is needed to create its row if the row was
    never written (the database was away when the call started)."""

    call_sid: str
    session_id: str
    tenant: str | None
    started_at: datetime
    transcript: list[dict[str, Any]]
    taken_at: datetime = field(default_factory=utcnow)
    answered_at: datetime | None = None
    # the row exists (create_call wrote it): a plain UPDATE; otherwise an upsert creates it
    row_written: bool = False
    usage: list[TokenUsage] = field(default_factory=list)  # the live model's tokens so far

    def as_json(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "session_id": self.session_id,
            "tenant": self.tenant,
            "started_at": self.started_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "taken_at": self.taken_at.isoformat(),
            "transcript": self.transcript,
            "usage": [dataclasses.asdict(u) for u in self.usage],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Checkpoint:
        """From a checkpoint file (written by us, but read back from disk: checked)."""
        transcript = d["transcript"]
        if not isinstance(transcript, list) or not all(isinstance(t, dict) for t in transcript):
            raise ValueError("transcript is not a list of turns")
        answered = d.get("answered_at")
        tenant = d.get("tenant")
        return cls(
            call_sid=str(d["call_sid"])[:200],
            session_id=str(d["session_id"])[:200],
            tenant=str(tenant)[:200] if tenant is not None else None,
            started_at=datetime.fromisoformat(d["started_at"]),
            answered_at=datetime.fromisoformat(answered) if answered else None,
            taken_at=datetime.fromisoformat(d["taken_at"]),
            transcript=transcript,
            usage=usage_from_json(d.get("usage")),
        )


def usage_from_json(items: Any) -> list[TokenUsage]:
    """Token counts as a checkpoint stored them (in `stats` or a file): checked, bounded."""
    out: list[TokenUsage] = []
    for u in items if isinstance(items, list) else []:
        if not isinstance(u, dict) or not isinstance(u.get("model_name"), str):
            continue
        counts = {k: u.get(k) for k in FIGURES}
        if not all(isinstance(v, int) and 0 <= v < 2**31 for v in counts.values()):
            continue
        total = u.get("total_tokens")
        out.append(
            TokenUsage(
                model_name=u["model_name"][:200],
                purpose="live",
                total_tokens=total if isinstance(total, int) and 0 <= total < 2**31 else None,
                **counts,  # type: ignore[arg-type]
            )
        )
    return out[:20]


def _usage_stats(cp: Checkpoint) -> dict[str, Any] | None:
    return {"usage": [dataclasses.asdict(u) for u in cp.usage]} if cp.usage else None


async def register_server(db: Database, me: ServerProcess) -> None:
    """Insert (or refresh) this process's row; before it serves a call."""
    await heartbeat_and_checkpoint(db, me, [])


async def unregister_server(db: Database, me: ServerProcess) -> None:
    """A clean stop: this process's row goes (its calls have all been written by then)."""
    async with db.begin() as conn:
        await conn.execute(sa.delete(server_processes).where(server_processes.c.id == me.id))


async def heartbeat_and_checkpoint(
    db: Database, me: ServerProcess, checkpoints: Sequence[Checkpoint], now: datetime | None = None
) -> bool:
    """One transaction: this process's heartbeat, and every given call's transcript. Returns
    False when this process had no row (its first beat, or it was taken for dead).

    A checkpoint is written only while its call is in progress and owned by the same stream;
    a call whose row was never created (the database was away at its start) is inserted.
    """
    now = now or utcnow()
    async with db.begin() as conn:
        had_row = await _beat(conn, db.dialect, me, now)
        await _write_checkpoints(conn, db.dialect, me, checkpoints)
    return had_row


async def heartbeat_then_each(
    db: Database, me: ServerProcess, checkpoints: Sequence[Checkpoint]
) -> list[tuple[str, Exception]]:
    """The careful path, after the one transaction failed with the database up: the heartbeat
    alone (a call the database refuses must not stop it, or other servers would take this one
    for dead), then each call in its own transaction; the calls refused, with why."""
    async with db.begin() as conn:
        await _beat(conn, db.dialect, me, utcnow())
    refused = []
    for cp in checkpoints:
        try:
            async with db.begin() as conn:
                await _write_checkpoints(conn, db.dialect, me, [cp])
        except Exception as exc:
            refused.append((cp.call_sid, exc))
    return refused


async def _beat(conn: Any, dialect: str, me: ServerProcess, now: datetime) -> bool:
    s = server_processes.c
    beat = await conn.execute(
        sa.update(server_processes).where(s.id == me.id).values(heartbeat_at=now)
    )
    if beat.rowcount:
        return True
    # first beat, or another server took us for dead and removed the row
    stmt = upsert_insert(dialect, server_processes).values(**me.as_row(now))
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["id"], set_={"heartbeat_at": now})
    )
    return False


async def _write_checkpoints(
    conn: Any, dialect: str, me: ServerProcess, checkpoints: Sequence[Checkpoint]
) -> None:
    # rows that exist take an UPDATE (an upsert would spend an id of PostgreSQL's sequence on
    # every call every round); only calls whose row was never written are upserted
    written = [cp for cp in checkpoints if cp.row_written]
    missing = [cp for cp in checkpoints if not cp.row_written]
    # in slices: the event loop (the calls' audio) gets a turn between them
    for i in range(0, len(written), CHECKPOINT_SLICE):
        part = written[i : i + CHECKPOINT_SLICE]
        await conn.execute(_CHECKPOINT_UPDATE, [_update_params(me, cp) for cp in part])
    for i in range(0, len(missing), CHECKPOINT_SLICE):
        await conn.execute(
            _checkpoint_upsert(dialect), _checkpoint_rows(me, missing[i : i + CHECKPOINT_SLICE])
        )


_c = call_details.c
# never over an ended call, never over another stream's row
_CHECKPOINT_UPDATE = (
    sa.update(call_details)
    .where(
        _c.call_sid == sa.bindparam("b_call_sid"),
        _c.session_id == sa.bindparam("b_session_id"),
        _c.status == CALL_STATUS_IN_PROGRESS,
    )
    .values(
        transcript=sa.bindparam("b_transcript", type_=_c.transcript.type),
        stats=sa.bindparam("b_stats", type_=_c.stats.type),
        checkpoint_at=sa.bindparam("b_checkpoint_at", type_=_c.checkpoint_at.type),
        server_id=sa.bindparam("b_server_id", type_=_c.server_id.type),
        answered_at=sa.func.coalesce(
            _c.answered_at, sa.bindparam("b_answered_at", type_=_c.answered_at.type)
        ),
        updated_at=sa.bindparam("b_updated_at", type_=_c.updated_at.type),
    )
)


def _checkpoint_upsert(dialect: str) -> Any:
    stmt = upsert_insert(dialect, call_details)
    ex, c = stmt.excluded, call_details.c
    return stmt.on_conflict_do_update(
        index_elements=["call_sid"],
        set_={
            "transcript": ex.transcript,
            "stats": ex.stats,
            "checkpoint_at": ex.checkpoint_at,
            "server_id": ex.server_id,
            "answered_at": sa.func.coalesce(c.answered_at, ex.answered_at),
            "updated_at": ex.updated_at,
        },
        # never over an ended call, never over another stream's row
        where=sa.and_(c.status == CALL_STATUS_IN_PROGRESS, c.session_id == ex.session_id),
    )


def _update_params(me: ServerProcess, cp: Checkpoint) -> dict[str, Any]:
    # only the statement's own parameter names: a key named like a column would be SET too
    return {
        "b_call_sid": cp.call_sid,
        "b_session_id": cp.session_id,
        "b_transcript": without_nul(cp.transcript),
        "b_stats": _usage_stats(cp),
        "b_checkpoint_at": cp.taken_at,
        "b_server_id": me.id,
        "b_answered_at": cp.answered_at,
        "b_updated_at": cp.taken_at,
    }


def _checkpoint_rows(me: ServerProcess, checkpoints: Sequence[Checkpoint]) -> list[dict]:
    return [
        {
            "session_id": cp.session_id,
            "call_sid": cp.call_sid,
            "tenant": cp.tenant,
            "custom_parameters": {},
            "status": CALL_STATUS_IN_PROGRESS,
            "started_at": cp.started_at,
            "answered_at": cp.answered_at,
            "transcript": without_nul(cp.transcript),
            "stats": _usage_stats(cp),
            "checkpoint_at": cp.taken_at,
            "server_id": me.id,
            "stage": Stage.LIVE,
            "attempts": 0,
            "created_at": cp.taken_at,
            "updated_at": cp.taken_at,
        }
        for cp in checkpoints
    ]


__all__ = [
    "Checkpoint",
    "ServerProcess",
    "heartbeat_and_checkpoint",
    "heartbeat_then_each",
    "provably_dead",
    "register_server",
    "this_pid_space",
    "unregister_server",
]
