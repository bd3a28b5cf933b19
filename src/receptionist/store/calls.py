"""The call record: created when a stream starts, finished (transcript, stats, usage) at hang-up.

``finish_call`` hands the call to the post-call pipeline by setting ``stage='transcript_saved'``.
All functions take a :class:`~receptionist.store.db.Database` and plain dataclasses, and return
plain dicts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from receptionist.store.db import Database, upsert_insert
from receptionist.store.schema import (
    CALL_STATUS_IN_PROGRESS,
    CALL_STATUSES,
    Stage,
    ai_token_usage,
    call_details,
    utcnow,
)
from receptionist.store.search import caller_key, response_times, search_document
from receptionist.store.webhook_deliveries import NewDelivery, insert_deliveries
from receptionist.untrusted import without_nul
from receptionist.usage import FIGURES, TokenUsage


class CallOwnedElsewhere(Exception):
    """The call_sid's row belongs to another stream: it is never merged into or overwritten."""

    def __init__(self, call_sid: str) -> None:
        super().__init__(f"call {call_sid} is recorded by another stream")
        self.call_sid = call_sid


def new_session_id() -> str:
    return str(uuid.uuid4())


@dataclass(kw_only=True, slots=True)
class StartDetails:
    """What a call's start says about it beyond its ids: Exotel's ``start`` frame and the
    engine chosen for the call. Written by create_call, and carried by the call's end
    (FinishedCall) for the row the end inserts or fills when the start's write failed."""

    stream_sid: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    custom_parameters: dict[str, Any] = field(default_factory=dict)
    sample_rate: int | None = None
    engine: str | None = None
    model: str | None = None
    tenant_version: int | None = None  # the stored tenant version answering (None: a folder)


START_DETAILS = tuple(f.name for f in fields(StartDetails))


@dataclass(kw_only=True, slots=True)
class NewCall(StartDetails):
    """What is known when Exotel's ``start`` frame arrives."""

    call_sid: str
    session_id: str = field(default_factory=new_session_id)  # the stream that owns the row
    tenant: str | None
    started_at: datetime = field(default_factory=utcnow)
    server_id: str | None = None  # the server process handling the call (server_processes.id)
    # the business's `call.started` webhook deliveries, written with the row (hooks/events.py)
    webhooks: list[NewDelivery] = field(default_factory=list)


@dataclass(kw_only=True, slots=True)
class FinishedCall(StartDetails):
    """Everything the bridge knows when a call ends. The start's details (StartDetails) are
    used only when the start's write failed (a call that started while the database was
    away): the row inserted here must name the caller as create_call would have. A spool
    file is this, flat (dataclasses.asdict)."""

    call_sid: str
    status: str  # 'completed' | 'failed' (or 'in_progress' for a partial save)
    # The stream that recorded the call; None only in spool files written before ownership
    # existed (those are merged as they always were).
    session_id: str | None = None
    end_reason: str | None = None
    error: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    answered_at: datetime | None = None
    ended_at: datetime = field(default_factory=utcnow)
    usage: list[TokenUsage] = field(default_factory=list)
    # Only used when no row exists yet (create_call never happened) or the row lacks them.
    tenant: str | None = None
    started_at: datetime | None = None
    # `call.started` deliveries of a start the database never took, written with this end
    # (idempotent: an event already written is left as it is)
    webhooks: list[NewDelivery] = field(default_factory=list)


# --- writing -----------------------------------------------------------------------------------


async def create_call(db: Database, c: NewCall) -> bool:
    """Record a call that just started; True when the row is this stream's (``session_id``).

    Idempotent on ``call_sid`` and first-come: an existing row is kept untouched, and False
    tells a second stream reusing the sid (a replay, a forgery) that the row is not its own.
    """
    now = utcnow()
    row = {
        "session_id": c.session_id,
        "call_sid": c.call_sid,
        "tenant": c.tenant,
        **_start_columns(c),
        "status": CALL_STATUS_IN_PROGRESS,
        "started_at": c.started_at,
        "server_id": c.server_id,
        "stage": Stage.LIVE,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    c_ = call_details.c
    async with db.begin() as conn:
        owner = (await conn.execute(_create_statement(db.dialect), row)).scalar()
        if owner is None:  # the sid was there already: whose is it (a retry of our own)?
            owner = (
                await conn.execute(sa.select(c_.session_id).where(c_.call_sid == c.call_sid))
            ).scalar()
        if owner == c.session_id:  # the call's own start: its call.started, in one commit
            await insert_deliveries(conn, db.dialect, c.webhooks)
    return owner == c.session_id


# Built once per dialect and given each call's values as parameters: building the statement
# with .values() per call (SQLAlchemy coerces every value into a bound parameter) cost ~0.5 ms
# of the event loop's CPU per call, and its RETURNING saves the read-back of the owner, in
# all ~0.8 ms of a call's start: 100 calls starting together wait for each other's.
_CREATE_STATEMENTS: dict[str, Any] = {}


def _create_statement(dialect: str) -> Any:
    stmt = _CREATE_STATEMENTS.get(dialect)
    if stmt is None:
        stmt = _CREATE_STATEMENTS[dialect] = (
            upsert_insert(dialect, call_details)
            .on_conflict_do_nothing(index_elements=["call_sid"])
            .returning(call_details.c.session_id)
        )
    return stmt


def _duration_ms(started: datetime | None, ended: datetime | None) -> int | None:
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds() * 1000))


def _merge_events(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict]:
    merged = list(old or [])
    for ev in new:
        if ev not in merged:
            merged.append(ev)
    return merged


def _aggregate_usage(usage: list[TokenUsage]) -> list[TokenUsage]:
    """One entry per (model_name, purpose): several entries of the same pair are summed."""
    by_key: dict[tuple[str, str], TokenUsage] = {}
    for u in usage:
        key = (u.model_name, u.purpose)
        have = by_key.get(key)
        by_key[key] = replace(u, total_tokens=u.total) if have is None else have + u
    return list(by_key.values())


async def upsert_token_usage(
    conn: AsyncConnection,
    call_sid: str,
    tenant: str | None,
    usage: list[TokenUsage],
) -> None:
    """Write one ai_token_usage row per (model_name, purpose) inside the caller's transaction.

    A re-run overwrites the figures instead of adding a second row; a cost already computed is
    kept when the figures did not change and cleared (to be costed again) when they did.
    """
    rows = _aggregate_usage(usage)
    if not rows:
        return
    now = utcnow()
    values = [
        {
            "call_sid": call_sid,
            "tenant": tenant,
            "model_name": u.model_name,
            "purpose": u.purpose,
            **{f: getattr(u, f) for f in FIGURES},
            "total_tokens": u.total_tokens or 0,
            "details": u.details,
            "created_at": now,
        }
        for u in rows
    ]
    stmt = upsert_insert(conn.dialect.name, ai_token_usage).values(values)
    ex = stmt.excluded
    t = ai_token_usage.c
    figures = (*FIGURES, "total_tokens")
    unchanged = sa.and_(*(t[name] == ex[name] for name in figures))
    stmt = stmt.on_conflict_do_update(
        index_elements=["call_sid", "model_name", "purpose"],
        set_={
            **{name: ex[name] for name in figures},
            "tenant": sa.func.coalesce(ex.tenant, t.tenant),
            # Same figures: keep the row's details too (they record which price was applied).
            "details": sa.case((unchanged, t.details), else_=ex.details),
            "total_cost": sa.case((unchanged, t.total_cost), else_=sa.null()),
            "currency": sa.case((unchanged, t.currency), else_=sa.null()),
        },
    )
    await conn.execute(stmt)


_c = call_details.c


def _start_columns(c: StartDetails) -> dict[str, Any]:
    """The columns a call's start sets, from the start itself or from its end."""
    columns = {name: getattr(c, name) for name in START_DETAILS}
    columns["custom_parameters"] = without_nul(dict(c.custom_parameters or {}))
    columns["caller_key"] = caller_key(c.from_number)
    return columns


_FINISH_READS = (
    _c.id, _c.session_id, _c.tenant, _c.started_at, _c.events, _c.stage, _c.summary, _c.call_type,
    *(_c[name] for name in START_DETAILS),
)  # fmt: skip


def enter_pipeline(now: datetime) -> dict[str, Any]:
    """The columns that hand an ended call to the post-call pipeline (its first stage, due now,
    no lease): written by the end of a call and by the reaper of a lost server's calls."""
    return {
        "stage": Stage.TRANSCRIPT_SAVED,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "lease_owner": None,
        "lease_expires_at": None,
    }


async def finish_call(db: Database, f: FinishedCall) -> None:
    """Store the end of a call and its token usage in one transaction.

    Text that came from outside (what was said, as the model transcribed it; error texts) is
    stored without NUL, which PostgreSQL refuses: one such character must not lose the call.

    Sets ``stage='transcript_saved'`` (attempts 0, due now) so the post-call pipeline picks the call
    up, unless the pipeline already moved it further (a repeated finish never rewinds it). Works
    when ``create_call`` never happened: the row is inserted then. Safe to call twice.
    Raises :class:`CallOwnedElsewhere` (writing nothing) when the row is another stream's.
    """
    if f.status not in CALL_STATUSES:
        raise ValueError(
            f"unknown call status {f.status!r}; expected one of {sorted(CALL_STATUSES)}"
        )
    now = utcnow()
    c = call_details.c
    transcript = without_nul(list(f.transcript))
    # per-call response times, kept with the call's figures: the owner's stats read these few
    # numbers instead of every transcript
    stats = {**f.stats, "response_ms": response_times(transcript)}
    async with db.begin() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(*_FINISH_READS).where(c.call_sid == f.call_sid).with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            tenant = f.tenant
            values = _finished_row(f, transcript, stats, now)
            await conn.execute(sa.insert(call_details).values(**values))
        elif f.session_id is not None and row["session_id"] != f.session_id:
            raise CallOwnedElsewhere(f.call_sid)
        else:
            values = _finished_update(row, f, transcript, stats, now)
            tenant = values["tenant"]
            await conn.execute(sa.update(call_details).where(c.id == row["id"]).values(**values))
        await upsert_token_usage(conn, f.call_sid, tenant, f.usage)
        await insert_deliveries(conn, db.dialect, f.webhooks)


def _finished_row(
    f: FinishedCall, transcript: list[dict[str, Any]], stats: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The whole row, for a call whose start was never written (the database was away)."""
    return {
        "session_id": f.session_id or new_session_id(),
        "call_sid": f.call_sid,
        "tenant": f.tenant,
        **_start_columns(f),
        "status": f.status,
        "end_reason": f.end_reason,
        "error": without_nul(f.error),
        "transcript": transcript,
        "search_text": search_document(transcript),
        "stats": stats,
        "events": without_nul(list(f.events)),
        "started_at": f.started_at,
        "answered_at": f.answered_at,
        "ended_at": f.ended_at,
        "duration_ms": _duration_ms(f.started_at, f.ended_at),
        "stage": Stage.TRANSCRIPT_SAVED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _finished_update(
    row: sa.RowMapping,
    f: FinishedCall,
    transcript: list[dict[str, Any]],
    stats: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The columns the end of a call updates on its row (`row`: _FINISH_READS of it)."""
    started_at = row["started_at"] or f.started_at
    values: dict[str, Any] = {
        "tenant": row["tenant"] or f.tenant,
        "status": f.status,
        "end_reason": f.end_reason,
        "error": without_nul(f.error),
        "transcript": transcript,
        "search_text": search_document(transcript, row["summary"], row["call_type"]),
        "stats": stats,
        "events": _merge_events(row["events"], without_nul(f.events)),
        "started_at": started_at,
        "answered_at": f.answered_at,
        "ended_at": f.ended_at,
        "duration_ms": _duration_ms(started_at, f.ended_at),
        "updated_at": now,
    }
    # a row a checkpoint created while the start write failed (bridge/checkpointer.py)
    # has no caller yet: the end brings the start's details, so fill what is missing
    start = _start_columns(f)
    for name in START_DETAILS:
        if row[name] is None and getattr(f, name) is not None:
            values[name] = start[name]
    if "from_number" in values:
        values["caller_key"] = start["caller_key"]
    if row["stage"] in (Stage.LIVE, Stage.TRANSCRIPT_SAVED):
        values.update(enter_pipeline(now))
    return values


async def record_call_event(db: Database, call_sid: str, kind: str, detail: Any = None) -> bool:
    """Append ``{t_ms, kind, detail}`` to the call's events (t_ms counted from the call start).

    Returns False when the call is not recorded. Meant for rare mid-call warnings; the bulk of a
    call's events travel with :func:`finish_call`.
    """
    c = call_details.c
    now = utcnow()
    async with db.begin() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(c.id, c.started_at, c.events)
                    .where(c.call_sid == call_sid)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return False
        t_ms = _duration_ms(row["started_at"], now) or 0
        events = [*(row["events"] or []), {"t_ms": t_ms, "kind": kind, "detail": detail}]
        await conn.execute(
            sa.update(call_details).where(c.id == row["id"]).values(events=events, updated_at=now)
        )
    return True


# --- reading -----------------------------------------------------------------------------------


async def get_call(db: Database, call_sid: str) -> dict[str, Any] | None:
    """The call row as a dict, with its ai_token_usage rows (dicts) under ``"usage"``."""
    async with db.session() as conn:
        row = (
            (await conn.execute(sa.select(call_details).where(call_details.c.call_sid == call_sid)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        usage = (
            (
                await conn.execute(
                    sa.select(ai_token_usage)
                    .where(ai_token_usage.c.call_sid == call_sid)
                    .order_by(ai_token_usage.c.id)
                )
            )
            .mappings()
            .all()
        )
    out = dict(row)
    out["usage"] = [dict(u) for u in usage]
    return out


async def list_calls(
    db: Database, *, tenant: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Calls, newest first (by start time), optionally of one tenant."""
    c = call_details.c
    stmt = sa.select(call_details)
    if tenant is not None:
        stmt = stmt.where(c.tenant == tenant)
    stmt = stmt.order_by(c.started_at.desc().nulls_last(), c.id.desc()).limit(limit).offset(offset)
    async with db.session() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [dict(r) for r in rows]


__all__ = [
    "FinishedCall",
    "NewCall",
    "create_call",
    "enter_pipeline",
    "finish_call",
    "get_call",
    "list_calls",
    "record_call_event",
    "upsert_token_usage",
]
