"""The call row is the post-call job: claim, lease, advance, retry.

A worker claims calls whose stage has work due and whose lease is free or expired, by writing its
id and a lease expiry on them. On PostgreSQL the candidate rows are picked with
`FOR UPDATE SKIP LOCKED`, so many workers never block on each other; on SQLite the claim runs in a
`BEGIN IMMEDIATE` transaction, which serialises writers, so two workers never claim the same row.
Every later write checks the lease owner and the stage it expects, so a worker whose lease was
taken over (it stalled or died) cannot overwrite the new owner's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, claimable
from receptionist.store.schema import Stage, call_details, utcnow


@dataclass(frozen=True, slots=True)
class Claim:
    call_sid: str
    tenant: str | None
    stage: str
    attempts: int
    lease_expires_at: datetime
    # Set by a worker that carries the call on to its next step at once: `advance` then keeps
    # the lease (renewed for this many seconds) instead of releasing it, until the call is done.
    hold_s: float | None = None


def _due(stages: Sequence[str], now: datetime) -> Any:
    c = call_details.c
    return sa.and_(
        c.stage.in_(list(stages)),
        sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
        sa.or_(c.lease_expires_at.is_(None), c.lease_expires_at < now),
    )


async def claim(
    db: Database,
    *,
    worker_id: str,
    stages: Sequence[str],
    lease_s: float,
    limit: int = 1,
    now: datetime | None = None,
) -> list[Claim]:
    """Claim up to `limit` calls with work due in `stages`; earliest hang-up first."""
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_s)
    c = call_details.c
    pick = (
        sa.select(c.id)
        .where(_due(stages, now))
        # Earliest hang-up first, whatever its stage: a call is carried through to the end
        # before later ones, instead of every call's step 1, then every call's step 2 ...
        .order_by(sa.func.coalesce(c.ended_at, c.created_at), c.id)
        .limit(limit)
    )
    picked = claimable(db.dialect, pick)
    stmt = (
        sa.update(call_details)
        .where(c.id.in_(sa.select(picked.c.id)))
        .values(lease_owner=worker_id, lease_expires_at=expires)
        .returning(c.call_sid, c.tenant, c.stage, c.attempts)
    )
    async with db.begin() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        Claim(
            call_sid=r.call_sid,
            tenant=r.tenant,
            stage=r.stage,
            attempts=r.attempts,
            lease_expires_at=expires,
        )
        for r in rows
    ]


def owned(call_sid: str, worker_id: str, stage: str) -> Any:
    """The WHERE clause every write of a claimed step uses (see the module docstring)."""
    c = call_details.c
    return sa.and_(c.call_sid == call_sid, c.lease_owner == worker_id, c.stage == stage)


async def advance(
    conn: Any,
    claim: Claim,
    *,
    worker_id: str,
    to_stage: str,
    values: dict[str, Any] | None = None,
    release: bool = True,
) -> bool:
    """Move a claimed call to its next stage inside the caller's transaction (so the step's own
    writes and the stage change commit together). False when the lease was lost: the caller must
    then roll back."""
    now = utcnow()
    update: dict[str, Any] = {
        "stage": to_stage,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "updated_at": now,
        **(values or {}),
    }
    if claim.hold_s is not None and to_stage != Stage.DONE:
        update.update(lease_expires_at=now + timedelta(seconds=claim.hold_s))
    elif release:
        update.update(lease_owner=None, lease_expires_at=None)
    result = await conn.execute(
        sa.update(call_details).where(owned(claim.call_sid, worker_id, claim.stage)).values(update)
    )
    return bool(result.rowcount)


def backoff_s(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Exponential backoff: base, 2×base, 4×base ... capped."""
    return float(min(cap_s, base_s * (2 ** max(0, attempts - 1))))


async def retry_later(
    db: Database,
    claim: Claim,
    *,
    worker_id: str,
    error: str,
    max_attempts: int,
    base_s: float = 5.0,
    cap_s: float = 600.0,
    retryable: bool = True,
) -> str:
    """Record a failed attempt: schedule the next one with backoff, or mark the call `failed`
    once `max_attempts` is reached (or at once when the error is not retryable). Returns the
    call's stage afterwards ('' when the lease was lost)."""
    attempts = claim.attempts + 1
    now = utcnow()
    give_up = not retryable or attempts >= max_attempts
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": f"{claim.stage}: {error}"[:2000],
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        "next_attempt_at": None
        if give_up
        else now + timedelta(seconds=backoff_s(attempts, base_s=base_s, cap_s=cap_s)),
    }
    if give_up:
        values["stage"] = Stage.FAILED
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(call_details)
            .where(owned(claim.call_sid, worker_id, claim.stage))
            .values(values)
        )
    if not result.rowcount:
        return ""
    return Stage.FAILED if give_up else claim.stage


async def defer(db: Database, claim: Claim, *, worker_id: str, delay_s: float, note: str) -> bool:
    """Not a failure, just not yet (e.g. Exotel has not finished the call's record): come back
    after `delay_s`. `attempts` still counts, so callers can back off."""
    now = utcnow()
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(call_details)
            .where(owned(claim.call_sid, worker_id, claim.stage))
            .values(
                attempts=claim.attempts + 1,
                next_attempt_at=now + timedelta(seconds=delay_s),
                last_error=f"{claim.stage}: {note}"[:2000],
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
    return bool(result.rowcount)


async def reschedule(db: Database, call_sid: str, *, stage: str) -> bool:
    """Operator retry (`receptionist calls retry`): put a call back at `stage`, due now."""
    now = utcnow()
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(call_details)
            .where(call_details.c.call_sid == call_sid)
            .values(
                stage=stage,
                attempts=0,
                next_attempt_at=now,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
    return bool(result.rowcount)
