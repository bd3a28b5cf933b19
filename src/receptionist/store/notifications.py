"""Notification rows: written before anything is sent, then moved through their states.

    queued ─claim─▶ sending ─accepted─▶ sent ─report─▶ delivered ─report─▶ read
                       │    ─rejected─▶ failed (final, the provider's reason kept)
                       │    ─retry────▶ queued again, later (or failed after max attempts)
                       │    ─ambiguous▶ unknown
                       └─ lease expired (the worker died mid-send) ─▶ unknown
    unknown ─report names it─▶ sent / delivered / read / failed
    unknown ─no report within the confirm window─▶ queued again (only when reports are enabled,
             and only if no unmatched report may concern it)

The claim that moves a row to `sending` commits before the request is made, so a worker killed
at any instant leaves the row `queued` (nothing was sent) or `sending` (maybe sent). `sending` is
never retried blindly: once its lease expires it becomes `unknown`, and only the provider's own
report (or, with reports enabled, the provider's silence for a whole window) decides what it was.
Every write after the claim checks the lease owner, as for calls (see jobs.py).

A status change that the business may hear of (the send's outcome, a provider's report) takes
an `events` function: called inside the change's transaction with the `StatusChange`, it returns
the webhook deliveries to write with it (hooks/events.py), so the event exists exactly when the
status does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from receptionist.store.db import Database, claimable, upsert_insert
from receptionist.store.schema import (
    NOTIFY_DELIVERED,
    NOTIFY_FAILED,
    NOTIFY_QUEUED,
    NOTIFY_READ,
    NOTIFY_SENDING,
    NOTIFY_SENT,
    NOTIFY_UNKNOWN,
    notification_reports,
    notifications,
    utcnow,
)
from receptionist.store.webhook_deliveries import NewDelivery, insert_deliveries

# How far along a message is; a report never moves it back (replays and late reports are no-ops).
_RANK = {
    NOTIFY_QUEUED: 0,
    NOTIFY_SENDING: 1,
    NOTIFY_UNKNOWN: 1,
    NOTIFY_SENT: 2,
    NOTIFY_FAILED: 3,
    NOTIFY_DELIVERED: 4,
    NOTIFY_READ: 5,
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A message's status as just written, for the webhook events of it."""

    notification_id: int
    tenant: str | None
    call_sid: str | None
    recipient_type: str | None
    recipient: str | None
    template_name: str | None
    status: str
    at: datetime
    error: str | None = None


#: Makes the webhook deliveries of a status change (hooks/events.py: status_events_of).
StatusEvents = Callable[[StatusChange], Sequence[NewDelivery]]
_CHANGE_COLUMNS = ("tenant", "call_sid", "recipient_type", "recipient", "template_name")


async def _write_events(
    conn: Any,
    events: StatusEvents | None,
    notification_id: int,
    row: Any,
    values: dict[str, Any],
    at: datetime | None = None,
) -> None:
    """The webhook deliveries of the status `values` just set on `row` (one message), written
    in the caller's transaction; `at`: when it happened, if the provider said."""
    if events is None:
        return
    when = values.get("delivered_at") or values.get("read_at") or values.get("sent_at")
    change = StatusChange(
        notification_id=notification_id,
        **{name: getattr(row, name) for name in _CHANGE_COLUMNS},
        status=values["status"],
        at=at or when or utcnow(),
        error=values.get("error"),
    )
    deliveries = list(events(change))
    if deliveries:
        await insert_deliveries(conn, conn.dialect.name, deliveries)


@dataclass(frozen=True, slots=True)
class NewNotification:
    call_sid: str | None  # None: not about one call (the owner's daily digest)
    tenant: str
    idempotency_key: str  # unique per (call, recipient, template)
    recipient: str | None  # digits with country code; None when there is no usable number
    recipient_type: str  # customer | owner | fixed
    message_type: str  # the call type that caused it
    template_name: str
    language: str
    status: str  # queued, or skipped with `error` saying why
    provider: str
    payload: dict[str, Any]  # what the provider needs: variables, sender, namespace
    details: dict[str, Any] = field(default_factory=dict)  # rendered text, sources, AI notes
    error: str | None = None
    urgent: bool = False


async def insert_notifications(conn: Any, dialect: str, rows: Sequence[NewNotification]) -> int:
    """Insert inside the caller's transaction; a key already present is left as it is (a re-run
    of the step decides the same messages and must not add or reset any). Returns rows added."""
    if not rows:
        return 0
    now = utcnow()
    stmt = (
        upsert_insert(dialect, notifications)
        .values(
            [
                {
                    "call_sid": r.call_sid,
                    "tenant": r.tenant,
                    "idempotency_key": r.idempotency_key,
                    "recipient": r.recipient,
                    "recipient_type": r.recipient_type,
                    "message_type": r.message_type,
                    "template_name": r.template_name,
                    "language": r.language,
                    "status": r.status,
                    "provider": r.provider,
                    "payload": r.payload,
                    "details": r.details,
                    "error": r.error,
                    "urgent": r.urgent,
                    "next_attempt_at": now if r.status == NOTIFY_QUEUED else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    result = await conn.execute(stmt)
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    call_sid: str | None
    tenant: str | None
    recipient: str | None
    template_name: str | None
    language: str | None
    payload: dict[str, Any]
    details: dict[str, Any]
    attempts: int  # including this one


async def claim_due(
    db: Database,
    *,
    worker_id: str,
    lease_s: float,
    limit: int,
    now: datetime | None = None,
) -> list[Claimed]:
    """Move up to `limit` due `queued` rows to `sending` under this worker's lease (committed
    before any request is made). Urgent messages first, then oldest first."""
    now = now or utcnow()
    n = notifications.c
    pick = (
        sa.select(n.id)
        .where(n.status == NOTIFY_QUEUED, n.next_attempt_at <= now)
        .order_by(n.urgent.desc(), n.next_attempt_at, n.id)
        .limit(limit)
    )
    picked = claimable(db.dialect, pick)
    stmt = (
        sa.update(notifications)
        .where(n.id.in_(sa.select(picked.c.id)), n.status == NOTIFY_QUEUED)
        .values(
            status=NOTIFY_SENDING,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=n.attempts + 1,
            updated_at=now,
        )
        .returning(
            n.id,
            n.call_sid,
            n.tenant,
            n.recipient,
            n.template_name,
            n.language,
            n.payload,
            n.details,
            n.attempts,
        )
    )
    async with db.begin() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        Claimed(
            id=r.id,
            call_sid=r.call_sid,
            tenant=r.tenant,
            recipient=r.recipient,
            template_name=r.template_name,
            language=r.language,
            payload=r.payload or {},
            details=r.details or {},
            attempts=r.attempts,
        )
        for r in rows
    ]


async def finish_sends(
    db: Database,
    outcomes: Sequence[tuple[int, dict[str, Any]]],
    *,
    worker_id: str,
    events: StatusEvents | None = None,
) -> list[bool]:
    """Record send outcomes `(id, values)` in one transaction, each only if this worker still
    holds the row in `sending` (a report may already have resolved it: then the report's status
    stands), with the webhook events of each (`events`). Releases the leases. Returns, per
    outcome, whether it was recorded."""
    n = notifications.c
    now = utcnow()
    recorded = []
    async with db.begin() as conn:
        for notification_id, values in outcomes:
            row = (
                await conn.execute(
                    sa.update(notifications)
                    .where(
                        n.id == notification_id,
                        n.lease_owner == worker_id,
                        n.status == NOTIFY_SENDING,
                    )
                    .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
                    .returning(*(n[name] for name in _CHANGE_COLUMNS))
                )
            ).first()
            recorded.append(row is not None)
            if row is not None:
                await _write_events(conn, events, notification_id, row, values)
    return recorded


async def finish_send(
    db: Database,
    notification_id: int,
    *,
    worker_id: str,
    values: dict[str, Any],
    events: StatusEvents | None = None,
) -> bool:
    """One outcome; see finish_sends."""
    (recorded,) = await finish_sends(
        db, [(notification_id, values)], worker_id=worker_id, events=events
    )
    return recorded


async def expire_abandoned(
    db: Database, *, confirm_window_s: float, now: datetime | None = None
) -> list[int]:
    """`sending` rows whose worker vanished (lease expired) become `unknown`: the request may have
    gone out. With a confirm window they are looked at again when it has passed."""
    now = now or utcnow()
    n = notifications.c
    async with db.begin() as conn:
        rows = (
            await conn.execute(
                sa.update(notifications)
                .where(n.status == NOTIFY_SENDING, n.lease_expires_at < now)
                .values(
                    status=NOTIFY_UNKNOWN,
                    lease_owner=None,
                    lease_expires_at=None,
                    error="the worker stopped while sending: the provider may have it",
                    next_attempt_at=(
                        now + timedelta(seconds=confirm_window_s) if confirm_window_s else None
                    ),
                    updated_at=now,
                )
                .returning(n.id)
            )
        ).all()
    return [r.id for r in rows]


UNEXPLAINED_REPORT = (
    "the provider reported sending an identical message (same number and template) that we "
    "cannot pin to one row: check which arrived before resending"
)


def _unexplained_report_for(row: Any) -> Any:
    """A report on `row`'s number and template, received since `row` was created, that matched
    no message and whose request id no message has learnt since: one of the identical messages
    waiting for an answer went out, and it may be this one."""
    r = notification_reports.c
    n2 = notifications.alias("n2")
    return sa.exists().where(
        r.notification_id.is_(None),
        r.recipient == row.c.recipient,
        r.template_name == row.c.template_name,
        r.received_at >= row.c.created_at,
        ~sa.exists().where(n2.c.provider_ref == r.provider_ref),
    )


async def requeue_unconfirmed(db: Database, *, now: datetime | None = None) -> list[int]:
    """`unknown` rows whose confirm window passed with no report naming them were not taken by
    the provider (it reports every request it accepts): queue them again. Rows that an
    unexplained report may concern are not: they stay `unknown` for a person."""
    now = now or utcnow()
    n = notifications.c
    due = sa.and_(
        n.status == NOTIFY_UNKNOWN,
        n.provider_ref.is_(None),
        n.next_attempt_at.is_not(None),
        n.next_attempt_at <= now,
    )
    async with db.begin() as conn:
        await conn.execute(
            sa.update(notifications)
            .where(due, _unexplained_report_for(notifications))
            .values(next_attempt_at=None, error=UNEXPLAINED_REPORT, updated_at=now)
        )
        rows = (
            await conn.execute(
                sa.update(notifications)
                .where(due)
                .values(
                    status=NOTIFY_QUEUED,
                    next_attempt_at=now,
                    error=sa.func.coalesce(n.error, "")
                    + "; no report from the provider within the confirm window: sending again",
                    updated_at=now,
                )
                .returning(n.id)
            )
        ).all()
    return [r.id for r in rows]


@dataclass(frozen=True, slots=True)
class Report:
    """A provider's delivery report, reduced to what we use."""

    provider_ref: str | None
    status: str  # sent | delivered | read | failed
    recipient: str | None = None  # digits
    template_name: str | None = None
    reason: str | None = None
    at: datetime | None = None


async def apply_report(
    db: Database,
    report: Report,
    *,
    match_window_s: float = 3600.0,
    events: StatusEvents | None = None,
) -> str:
    """Apply one delivery report and keep it; returns what happened: `updated`, `unchanged` (a
    replay, or an older status than we have), `unknown_ref`, or `ambiguous_match`.

    The report is matched by the provider's request id. When no row has that id, the one row
    still waiting for the answer to its send (`sending`, or `unknown` after a timeout or a crash)
    with the same number and template, created within `match_window_s`, is the one it reports
    on: that is how an ambiguous send is resolved without sending it twice. When several such
    rows exist the report cannot be pinned to one; kept unmatched, it stops any of them from
    being resent automatically (see requeue_unconfirmed). A status that moved forward writes
    its webhook events (`events`) in the same transaction."""
    async with db.begin() as conn:
        outcome, matched = await _apply(conn, report, match_window_s, events)
        await conn.execute(
            sa.insert(notification_reports).values(
                provider_ref=report.provider_ref,
                recipient=report.recipient,
                template_name=report.template_name,
                status=report.status,
                reason=report.reason,
                notification_id=matched,
                outcome=outcome,
                received_at=utcnow(),
            )
        )
    return outcome


async def _apply(
    conn: Any, report: Report, match_window_s: float, events: StatusEvents | None
) -> tuple[str, int | None]:
    # The update is a compare-and-set on the status read: on PostgreSQL (read committed) the
    # send's own answer or another report can commit between the look and the write, and an
    # unconditional write would then move the status back or write its event twice. Lost, the
    # race is looked at again: the status that won may make this report a no-op.
    for _ in range(_APPLY_ATTEMPTS):
        row = await _reported_row(conn, report, match_window_s)
        if isinstance(row, str):
            return row, None
        if report.status not in _RANK or _RANK[report.status] <= _RANK.get(row.status, 0):
            return "unchanged", row.id
        if row.status == NOTIFY_FAILED and row.sent_at is None:
            # the provider refused the send itself (a 4xx): nothing went out, so no report can
            # make it delivered; the refusal and its reason stay as they are
            return "unchanged", row.id
        values = _report_columns(report, row)
        n = notifications.c
        written = await conn.execute(
            sa.update(notifications).where(n.id == row.id, n.status == row.status).values(values)
        )
        if written.rowcount == 1:
            await _write_events(conn, events, row.id, row, values, report.at)
            return "updated", row.id
    return "unchanged", row.id


_APPLY_ATTEMPTS = 3  # each lost race means another writer moved the status forward meanwhile


async def _reported_row(conn: Any, report: Report, match_window_s: float) -> Any:
    """The message a report is about, or why there is none ("unknown_ref", "ambiguous_match")."""
    n = notifications.c
    by_ref: sa.ColumnElement[bool] = sa.false()
    if report.provider_ref:
        by_ref = n.provider_ref == report.provider_ref
    waiting: sa.ColumnElement[bool] = sa.false()
    if report.recipient and report.template_name:
        waiting = sa.and_(
            n.status.in_([NOTIFY_SENDING, NOTIFY_UNKNOWN]),
            n.provider_ref.is_(None),
            n.recipient == report.recipient,
            n.template_name == report.template_name,
            n.created_at >= utcnow() - timedelta(seconds=match_window_s),
        )
    # One statement, so one snapshot: with two, PostgreSQL (read committed) can let the
    # reported message's own answer commit in between, hiding it from both looks, and the
    # report would be pinned on an identical message the provider never took.
    found = (
        await conn.execute(
            sa.select(
                n.id, n.status, n.provider_ref, n.sent_at, *(n[k] for k in _CHANGE_COLUMNS)
            ).where(sa.or_(by_ref, waiting))
        )
    ).all()
    ref = report.provider_ref
    row = next((r for r in found if ref and r.provider_ref == ref), None)
    if row is None:
        candidates = [r for r in found if r.provider_ref is None]
        if len(candidates) > 1:
            return "ambiguous_match"
        row = candidates[0] if candidates else None
    return row if row is not None else "unknown_ref"


def _report_columns(report: Report, row: Any) -> dict[str, Any]:
    """What a report that moves a message's status forward writes on its row."""
    now = report.at or utcnow()
    values: dict[str, Any] = {
        "status": report.status,
        "updated_at": utcnow(),
        "next_attempt_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if row.provider_ref is None and report.provider_ref:
        values["provider_ref"] = report.provider_ref
    if report.status == NOTIFY_SENT:
        values["sent_at"] = now
    elif report.status == NOTIFY_DELIVERED:
        values["delivered_at"] = now
    elif report.status == NOTIFY_READ:
        values["read_at"] = now
    if report.status == NOTIFY_FAILED:
        values["error"] = report.reason or "the provider reported a failure"
    else:
        # it went out after all (an unknown send resolved, or a late report after an earlier
        # failure report): an error kept beside a good status would contradict it
        values["error"] = None
    return values


async def requeue(db: Database, notification_id: int) -> bool:
    """A person decided (`receptionist messages resend`): send a failed/unknown message again."""
    n = notifications.c
    now = utcnow()
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(notifications)
            .where(n.id == notification_id, n.status.in_([NOTIFY_FAILED, NOTIFY_UNKNOWN]))
            .values(status=NOTIFY_QUEUED, next_attempt_at=now, updated_at=now, attempts=0)
        )
    return bool(result.rowcount)


async def list_notifications(
    db: Database,
    *,
    call_sid: str | None = None,
    tenant: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    n = notifications.c
    stmt = sa.select(notifications).order_by(n.id.desc()).limit(limit)
    if call_sid:
        stmt = stmt.where(n.call_sid == call_sid)
    if tenant:
        stmt = stmt.where(n.tenant == tenant)
    if status:
        stmt = stmt.where(n.status == status)
    async with db.session() as conn:
        rows = (await conn.execute(stmt)).all()
    return [dict(r._mapping) for r in rows]
