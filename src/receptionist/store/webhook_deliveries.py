"""Webhook deliveries: written with the event, claimed under a lease, finished with each attempt
recorded.

A claim does not change the status (a delivery stays `pending` until it is delivered or given
up): it sets a lease and counts the attempt, so a worker killed in the middle of a request leaves
a row another worker claims once the lease has run out. Webhooks are delivered at least once;
the receiver de-duplicates by `event_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, claim_due, upsert_insert
from receptionist.store.schema import utcnow, webhook_attempts, webhook_deliveries

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "ClaimedDelivery",
    "NewDelivery",
    "claim_deliveries",
    "finish_delivery",
    "insert_deliveries",
    "list_attempts",
    "recent_attempts",
    "replay_delivery",
]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class NewDelivery:
    event_id: str
    event_type: str
    tenant: str
    call_sid: str | None
    url: str
    secret_env: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    event_id: str
    event_type: str
    url: str
    secret_env: str
    payload: dict[str, Any]
    attempts: int  # including this one


async def insert_deliveries(conn: Any, dialect: str, rows: list[NewDelivery]) -> int:
    """Inside the caller's transaction; an (event, URL) already there is left as it is."""
    if not rows:
        return 0
    now = utcnow()
    stmt = (
        upsert_insert(dialect, webhook_deliveries)
        .values(
            [
                {
                    "event_id": r.event_id,
                    "event_type": r.event_type,
                    "tenant": r.tenant,
                    "call_sid": r.call_sid,
                    "url": r.url,
                    "secret_env": r.secret_env,
                    "payload": r.payload,
                    "status": PENDING,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["event_id", "url"])
    )
    result = await conn.execute(stmt)
    return int(result.rowcount or 0)


async def claim_deliveries(
    db: Database, *, worker_id: str, lease_s: float, limit: int, now: datetime | None = None
) -> list[ClaimedDelivery]:
    now = now or utcnow()
    d = webhook_deliveries.c
    rows = await claim_due(
        db,
        webhook_deliveries,
        sa.true(),
        worker_id=worker_id,
        lease_s=lease_s,
        limit=limit,
        now=now,
        returning=(d.id, d.event_id, d.event_type, d.url, d.secret_env, d.payload, d.attempts),
    )
    return [
        ClaimedDelivery(r.id, r.event_id, r.event_type, r.url, r.secret_env, r.payload, r.attempts)
        for r in rows
    ]


async def finish_delivery(
    db: Database,
    claimed: ClaimedDelivery,
    *,
    worker_id: str,
    attempted_at: datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> bool:
    """Record the attempt and its outcome: delivered (2xx), again at `retry_at`, or failed
    (`retry_at` None). False if the lease was lost meanwhile (another worker has it now)."""
    d = webhook_deliveries.c
    ok = status_code is not None and 200 <= status_code < 300
    status = DELIVERED if ok else (PENDING if retry_at is not None else FAILED)
    now = utcnow()
    async with db.begin() as conn:
        await conn.execute(
            sa.insert(webhook_attempts).values(
                delivery_id=claimed.id,
                attempted_at=attempted_at,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        done = await conn.execute(
            sa.update(webhook_deliveries)
            .where(d.id == claimed.id, d.lease_owner == worker_id, d.status == PENDING)
            .values(
                status=status,
                last_status_code=status_code,
                last_error=error,
                next_attempt_at=retry_at,
                lease_owner=None,
                lease_expires_at=None,
                delivered_at=now if ok else None,
                updated_at=now,
            )
        )
    return bool(done.rowcount)


async def replay_delivery(db: Database, delivery_id: int, *, tenant: str | None = None) -> bool:
    """Send a delivery again now, whatever became of it (a receiver that lost it asks)."""
    d = webhook_deliveries.c
    stmt = (
        sa.update(webhook_deliveries)
        .where(d.id == delivery_id)
        .values(
            status=PENDING,
            next_attempt_at=utcnow(),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )
    if tenant is not None:
        stmt = stmt.where(d.tenant == tenant)
    async with db.begin() as conn:
        return bool((await conn.execute(stmt)).rowcount)


async def list_attempts(db: Database, delivery_id: int) -> list[dict[str, Any]]:
    a = webhook_attempts.c
    async with db.session() as conn:
        rows = await conn.execute(
            sa.select(webhook_attempts).where(a.delivery_id == delivery_id).order_by(a.id)
        )
        return [dict(r) for r in rows.mappings()]


async def recent_attempts(
    db: Database, delivery_ids: list[int], *, per_delivery: int = 20
) -> dict[int, list[dict[str, Any]]]:
    """The latest `per_delivery` attempts of each delivery (oldest first), in one query: a page
    of deliveries shows its attempts without a query each, and a delivery replayed a thousand
    times still shows a bounded list."""
    if not delivery_ids:
        return {}
    a = webhook_attempts.c
    ranked = (
        sa.select(
            webhook_attempts,
            sa.func.row_number().over(partition_by=a.delivery_id, order_by=a.id.desc()).label("n"),
        )
        .where(a.delivery_id.in_(delivery_ids))
        .subquery()
    )
    stmt = sa.select(ranked).where(ranked.c.n <= per_delivery).order_by(ranked.c.id)
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in delivery_ids}
    async with db.session() as conn:
        for r in (await conn.execute(stmt)).mappings():
            row = dict(r)
            row.pop("n")
            out[row["delivery_id"]].append(row)
    return out
