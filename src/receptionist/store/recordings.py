"""Call recording rows: added when a tape is finished, claimed under a lease by the uploader on
the machine that holds the tape, finished with each attempt's outcome, deleted by retention.

Like webhook deliveries, a claim leaves the status alone (`pending` until stored or given up):
it sets a lease and counts the attempt, so an uploader killed mid-upload leaves a row that is
claimed again once the lease has run out (the upload is a whole-object put: doing it twice is
harmless).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, claim_due, upsert_insert
from receptionist.store.schema import call_recordings, utcnow

__all__ = [
    "DELETED",
    "EMPTY",
    "FAILED",
    "OPTED_OUT",
    "PENDING",
    "STORED",
    "ClaimedUpload",
    "NewRecording",
    "add_recording",
    "claim_uploads",
    "expired",
    "mark_deleted",
    "recording_for",
    "upload_failed",
    "upload_finished",
]

PENDING, STORED, FAILED, OPTED_OUT, EMPTY, DELETED = (
    "pending", "stored", "failed", "opted_out", "empty", "deleted",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewRecording:
    call_sid: str
    tenant: str
    node: str
    raw_base: str | None
    sample_rate: int
    status: str = PENDING
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedUpload:
    id: int
    call_sid: str
    tenant: str
    raw_base: str
    sample_rate: int
    attempts: int  # including this one
    created_at: datetime


async def add_recording(db: Database, new: NewRecording, *, now: datetime | None = None) -> bool:
    """The row, once (a call's second tape, or the same manifest seen twice, adds nothing)."""
    now = now or utcnow()
    stmt = (
        upsert_insert(db.dialect, call_recordings)
        .values(
            call_sid=new.call_sid,
            tenant=new.tenant,
            node=new.node,
            raw_base=new.raw_base,
            sample_rate=new.sample_rate,
            status=new.status,
            last_error=new.last_error,
            next_attempt_at=now if new.status == PENDING else None,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["call_sid"])
    )
    async with db.begin() as conn:
        return bool((await conn.execute(stmt)).rowcount)


async def claim_uploads(
    db: Database, *, node: str, worker_id: str, lease_s: float, limit: int, now: datetime
) -> list[ClaimedUpload]:
    r = call_recordings.c
    rows = await claim_due(
        db,
        call_recordings,
        r.node == node,
        worker_id=worker_id,
        lease_s=lease_s,
        limit=limit,
        now=now,
        returning=(r.id, r.call_sid, r.tenant, r.raw_base, r.sample_rate, r.attempts, r.created_at),
    )
    return [ClaimedUpload(*row) for row in rows]


async def upload_finished(
    db: Database,
    claimed: ClaimedUpload,
    *,
    worker_id: str,
    status: str,
    store: str | None = None,
    key: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
    duration_ms: int | None = None,
) -> bool:
    """Stored (or found empty); False: the lease had passed to another uploader."""
    r = call_recordings.c
    now = utcnow()
    async with db.begin() as conn:
        done = await conn.execute(
            sa.update(call_recordings)
            .where(r.id == claimed.id, r.lease_owner == worker_id, r.status == PENDING)
            .values(
                status=status,
                store=store,
                store_key=key,
                content_type=content_type,
                bytes=size,
                duration_ms=duration_ms,
                last_error=None,
                next_attempt_at=None,
                lease_owner=None,
                lease_expires_at=None,
                stored_at=now if status == STORED else None,
                updated_at=now,
            )
        )
    return bool(done.rowcount)


async def upload_failed(
    db: Database,
    claimed: ClaimedUpload,
    *,
    worker_id: str,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Again at `retry_at`, or `failed` for good (None): the reason is kept on the row."""
    r = call_recordings.c
    async with db.begin() as conn:
        await conn.execute(
            sa.update(call_recordings)
            .where(r.id == claimed.id, r.lease_owner == worker_id, r.status == PENDING)
            .values(
                status=PENDING if retry_at is not None else FAILED,
                last_error=error[:300],
                next_attempt_at=retry_at,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=utcnow(),
            )
        )


async def expired(
    db: Database, tenant: str, before: datetime, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The tenant's recordings made before `before` and not yet deleted (any status but a
    pending one some uploader holds right now)."""
    r = call_recordings.c
    stmt = (
        sa.select(r.id, r.call_sid, r.node, r.raw_base, r.status, r.store, r.store_key)
        .where(
            r.tenant == tenant,
            r.created_at < before,
            r.status != DELETED,
            sa.or_(r.lease_expires_at.is_(None), r.lease_expires_at < utcnow()),
        )
        .order_by(r.id)
        .limit(limit)
    )
    async with db.session() as conn:
        return [dict(row) for row in (await conn.execute(stmt)).mappings()]


async def mark_deleted(db: Database, recording_id: int) -> None:
    r = call_recordings.c
    now = utcnow()
    async with db.begin() as conn:
        await conn.execute(
            sa.update(call_recordings)
            .where(r.id == recording_id)
            .values(
                status=DELETED,
                raw_base=None,
                next_attempt_at=None,
                deleted_at=now,
                updated_at=now,
            )
        )


async def recording_for(db: Database, call_sid: str) -> dict[str, Any] | None:
    async with db.session() as conn:
        row = (
            await conn.execute(
                sa.select(call_recordings).where(call_recordings.c.call_sid == call_sid)
            )
        ).first()
    return dict(row._mapping) if row is not None else None
