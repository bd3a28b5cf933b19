"""The persistence layer on both backends (SQLite file and a real PostgreSQL server)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from receptionist.store.calls import (
    FinishedCall,
    NewCall,
    create_call,
    finish_call,
    get_call,
    list_calls,
    record_call_event,
)
from receptionist.store.db import Database, DatabaseError, DatabaseUnavailable
from receptionist.store.schema import (
    SEARCH_INDEX_OBJECTS,
    Stage,
    ai_token_usage,
    call_details,
    metadata,
)
from receptionist.usage import TokenUsage
from tests.pg import free_port

IST = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)

TRANSCRIPT = [
    {"speaker": "agent", "text": "नमस्ते, Sweet Crumbs Bakery!", "start_ms": 0, "end_ms": 1800},
    {
        "speaker": "caller",
        "text": "I want a chocolate cake for 4pm",
        "start_ms": 2100,
        "end_ms": 4000,
    },
    {
        "speaker": "agent",
        "text": "Sure, which size?",
        "start_ms": 4300,
        "end_ms": 5200,
        "interrupted": True,
    },
]


def _new_call(call_sid: str = "CA100", **kw: object) -> NewCall:
    values: dict[str, object] = {
        "call_sid": call_sid,
        "stream_sid": "ST100",
        "tenant": "bakery",
        "from_number": "+919812345678",
        "to_number": "+918047112233",
        "direction": "inbound",
        "custom_parameters": {"tenant": "bakery"},
        "sample_rate": 8000,
        "engine": "gemini-live",
        "model": "gemini-live-2.5-flash",
        "started_at": T0,
    }
    values.update(kw)
    return NewCall(**values)  # type: ignore[arg-type]


def _usage(scale: int = 1) -> list[TokenUsage]:
    return [
        TokenUsage(
            model_name="gemini-live-2.5-flash",
            purpose="live",
            input_tokens=1000 * scale,
            output_tokens=400 * scale,
            input_audio_tokens=900 * scale,
            input_text_tokens=100 * scale,
            output_audio_tokens=380 * scale,
            output_text_tokens=20 * scale,
            details={"turns": 3},
        ),
        TokenUsage(model_name="gemini-2.5-flash", purpose="analysis", input_tokens=700 * scale),
    ]


def _finished(call_sid: str = "CA100", **kw: object) -> FinishedCall:
    values: dict[str, object] = {
        "call_sid": call_sid,
        "status": "completed",
        "end_reason": "caller_hangup",
        "transcript": TRANSCRIPT,
        "stats": {"frames_in": 250, "frames_out": 180, "bad_frames": 1, "p50_response_ms": 640},
        "events": [{"t_ms": 1200, "kind": "bad_media", "detail": "odd payload length"}],
        "answered_at": T0 + timedelta(milliseconds=350),
        "ended_at": T0 + timedelta(seconds=42, milliseconds=500),
        "usage": _usage(),
    }
    values.update(kw)
    return FinishedCall(**values)  # type: ignore[arg-type]


async def _usage_rows(db: Database) -> list[dict]:
    async with db.session() as conn:
        rows = (await conn.execute(sa.select(ai_token_usage).order_by(ai_token_usage.c.id))).all()
    return [dict(r._mapping) for r in rows]


# --- migrations --------------------------------------------------------------------------------

HEAD = "0015_callback_schedule"


async def test_upgrade_is_idempotent(db: Database) -> None:
    await db.upgrade()
    await db.upgrade()
    assert await db.current_revision() == HEAD
    async with db.session() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert {
        "tenant_configs",
        "call_details",
        "exotel_call_details",
        "notifications",
        "ai_token_usage",
        "alembic_version",
    } <= names


async def test_migrations_match_schema(db: Database) -> None:
    """The tables Alembic creates are the ones schema.py describes (no drift)."""

    def diff(conn: sa.Connection) -> list:
        def modelled(name: str | None, type_: str, parent: object) -> bool:
            return not (name or "").startswith(SEARCH_INDEX_OBJECTS)

        opts = {"compare_type": True, "include_name": modelled}
        ctx = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(ctx, metadata)

    async with db.session() as conn:
        assert await conn.run_sync(diff) == []


async def test_downgrade_to_base_and_back(db: Database) -> None:
    await db.downgrade("base")
    assert await db.current_revision() is None
    await db.upgrade()
    assert await db.current_revision() == HEAD


async def test_upgrade_from_first_revision_keeps_notifications(db: Database) -> None:
    """A database made by 0001 with a message in it upgrades: the row survives, `pending`
    becomes `queued`, and the new columns have their defaults."""
    await db.downgrade("0001_initial")
    async with db.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO notifications (call_sid, status, idempotency_key, attempts) "
                "VALUES ('CAold', 'pending', 'CAold:owner:t', 0)"
            )
        )
    await db.upgrade()
    async with db.session() as conn:
        row = (await conn.execute(sa.text("SELECT status, urgent FROM notifications"))).one()
    assert row.status == "queued" and not row.urgent


async def test_upgrade_moves_a_call_left_at_costed_on(db: Database) -> None:
    """A call a worker left at the old `costed` stage is claimable again after the upgrade."""
    await db.downgrade("0006_server_checkpoints")
    async with db.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO call_details (session_id, call_sid, stage, attempts, status) "
                "VALUES ('s1', 'CAcosted', 'costed', 0, 'completed')"
            )
        )
    await db.upgrade()
    async with db.session() as conn:
        stage = (await conn.execute(sa.text("SELECT stage FROM call_details"))).scalar_one()
    assert stage == Stage.EXOTEL_DETAILS


async def test_concurrent_upgrades_of_a_fresh_database(db: Database) -> None:
    """Several processes starting at once may all run the migrations: one wins, none fails."""
    await db.downgrade("base")
    others = [Database(db.url) for _ in range(3)]
    try:
        await asyncio.gather(*(o.upgrade() for o in others))
    finally:
        for o in others:
            await o.dispose()
    assert await db.current_revision() == HEAD


async def test_ping(db: Database) -> None:
    await db.ping()


# --- calls -------------------------------------------------------------------------------------


async def test_create_finish_get_round_trip(db: Database) -> None:
    await create_call(db, _new_call())
    live = await get_call(db, "CA100")
    assert live is not None
    assert live["status"] == "in_progress"
    assert live["stage"] == "live"
    assert live["usage"] == []
    assert len(live["session_id"]) == 36

    await finish_call(db, _finished())
    call = await get_call(db, "CA100")
    assert call is not None
    assert call["session_id"] == live["session_id"]
    assert call["tenant"] == "bakery"
    assert call["from_number"] == "+919812345678"
    assert call["custom_parameters"] == {"tenant": "bakery"}
    assert call["sample_rate"] == 8000
    assert call["engine"] == "gemini-live"
    assert call["status"] == "completed"
    assert call["end_reason"] == "caller_hangup"
    assert call["transcript"] == TRANSCRIPT
    assert call["stats"]["frames_in"] == 250
    assert call["events"] == [{"t_ms": 1200, "kind": "bad_media", "detail": "odd payload length"}]
    assert call["started_at"] == T0
    assert call["started_at"].tzinfo is not None
    assert call["answered_at"] == T0 + timedelta(milliseconds=350)
    assert call["duration_ms"] == 42_500
    assert call["stage"] == "transcript_saved"
    assert call["attempts"] == 0
    assert call["next_attempt_at"] is not None
    assert call["critical_call_details"] is None

    usage = {(u["model_name"], u["purpose"]): u for u in call["usage"]}
    assert set(usage) == {("gemini-live-2.5-flash", "live"), ("gemini-2.5-flash", "analysis")}
    live_usage = usage[("gemini-live-2.5-flash", "live")]
    assert live_usage["input_tokens"] == 1000
    assert live_usage["output_audio_tokens"] == 380
    assert live_usage["total_tokens"] == 1400
    assert live_usage["tenant"] == "bakery"
    assert live_usage["details"] == {"turns": 3}
    assert live_usage["total_cost"] is None
    assert usage[("gemini-2.5-flash", "analysis")]["total_tokens"] == 700


async def test_timestamps_are_stored_in_utc(db: Database) -> None:
    started_ist = datetime(2025, 3, 1, 15, 30, tzinfo=IST)  # == 10:00 UTC
    await create_call(db, _new_call("CA-TZ", started_at=started_ist))
    call = await get_call(db, "CA-TZ")
    assert call is not None
    assert call["started_at"] == T0
    assert call["started_at"].utcoffset() == timedelta(0)
    assert call["created_at"].tzinfo is not None


async def test_finish_without_create(db: Database) -> None:
    await finish_call(
        db,
        _finished("CA-ORPHAN", status="failed", error="engine connect failed", tenant="saloon"),
    )
    call = await get_call(db, "CA-ORPHAN")
    assert call is not None
    assert call["status"] == "failed"
    assert call["error"] == "engine connect failed"
    assert call["tenant"] == "saloon"
    assert call["transcript"] == TRANSCRIPT
    assert call["stage"] == "transcript_saved"
    assert call["duration_ms"] is None  # start unknown
    assert len(call["usage"]) == 2


async def test_finish_twice_does_not_duplicate_usage(db: Database) -> None:
    await create_call(db, _new_call())
    await finish_call(db, _finished())
    async with db.begin() as conn:  # the costing step prices the first figures
        await conn.execute(sa.update(ai_token_usage).values(total_cost=0.25, currency="USD"))
    await finish_call(db, _finished(usage=_usage(scale=1)))  # same figures: cost kept
    rows = await _usage_rows(db)
    assert len(rows) == 2
    assert all(float(r["total_cost"]) == 0.25 for r in rows)

    await finish_call(db, _finished(usage=_usage(scale=2)))  # new figures: overwritten, re-cost
    rows = await _usage_rows(db)
    assert len(rows) == 2
    live = next(r for r in rows if r["purpose"] == "live")
    assert live["input_tokens"] == 2000
    assert live["total_cost"] is None

    call = await get_call(db, "CA100")
    assert call is not None
    assert len(call["events"]) == 1  # the same events are not appended twice


async def test_usage_entries_of_one_model_and_purpose_are_summed(db: Database) -> None:
    usage = [
        TokenUsage(model_name="m", purpose="live", input_tokens=10, output_tokens=5),
        TokenUsage(model_name="m", purpose="live", input_tokens=1, output_tokens=2),
    ]
    await finish_call(db, _finished("CA-SUM", usage=usage))
    call = await get_call(db, "CA-SUM")
    assert call is not None
    assert [(u["input_tokens"], u["output_tokens"], u["total_tokens"]) for u in call["usage"]] == [
        (11, 7, 18)
    ]


async def test_duplicate_create_keeps_first(db: Database) -> None:
    await create_call(db, _new_call(stream_sid="ST-FIRST"))
    first = await get_call(db, "CA100")
    await create_call(db, _new_call(stream_sid="ST-SECOND", from_number="+910000000000"))
    again = await get_call(db, "CA100")
    assert first is not None and again is not None
    assert again["stream_sid"] == "ST-FIRST"
    assert again["from_number"] == "+919812345678"
    assert again["session_id"] == first["session_id"]
    assert len(await list_calls(db)) == 1


async def test_finish_does_not_rewind_the_pipeline(db: Database) -> None:
    await finish_call(db, _finished())
    async with db.begin() as conn:
        await conn.execute(sa.text("UPDATE call_details SET stage = 'analysed', attempts = 2"))
    await finish_call(db, _finished(end_reason="duplicate stop"))
    call = await get_call(db, "CA100")
    assert call is not None
    assert call["stage"] == "analysed"
    assert call["attempts"] == 2
    assert call["end_reason"] == "duplicate stop"


async def test_unknown_status_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="unknown call status"):
        await finish_call(db, _finished(status="done"))


async def test_record_call_event(db: Database) -> None:
    assert await record_call_event(db, "CA-NONE", "warning", "no such call") is False
    started = datetime.now(UTC) - timedelta(seconds=3)
    await create_call(db, _new_call(started_at=started))
    before = datetime.now(UTC)
    assert await record_call_event(db, "CA100", "slow_model", {"ms": 2500}) is True
    after = datetime.now(UTC)
    call = await get_call(db, "CA100")
    assert call is not None
    [event] = call["events"]
    assert event["kind"] == "slow_model"
    assert event["detail"] == {"ms": 2500}
    # counted from the call's start to the moment it was recorded, somewhere in [before, after]
    ms = timedelta(milliseconds=1)
    assert (before - started) // ms <= event["t_ms"] <= math.ceil((after - started) / ms)
    # finish keeps the mid-call event and adds its own
    await finish_call(db, _finished())
    call = await get_call(db, "CA100")
    assert call is not None
    assert [e["kind"] for e in call["events"]] == ["slow_model", "bad_media"]


async def test_list_calls(db: Database) -> None:
    for i in range(5):
        tenant = "bakery" if i % 2 == 0 else "saloon"
        await create_call(
            db, _new_call(f"CA{i}", tenant=tenant, started_at=T0 + timedelta(minutes=i))
        )
    calls = await list_calls(db)
    assert [c["call_sid"] for c in calls] == ["CA4", "CA3", "CA2", "CA1", "CA0"]
    bakery = await list_calls(db, tenant="bakery", limit=2)
    assert [c["call_sid"] for c in bakery] == ["CA4", "CA2"]
    assert await list_calls(db, tenant="nobody") == []


async def test_concurrent_calls(db: Database) -> None:
    """Many calls starting and ending at once: no 'database is locked', nothing lost."""

    async def one(i: int) -> None:
        await create_call(db, _new_call(f"CC{i}", stream_sid=f"S{i}"))
        await record_call_event(db, f"CC{i}", "note", i)
        await finish_call(db, _finished(f"CC{i}"))

    await asyncio.gather(*(one(i) for i in range(20)))
    calls = await list_calls(db, limit=100)
    assert len(calls) == 20
    assert {c["stage"] for c in calls} == {"transcript_saved"}
    assert len(await _usage_rows(db)) == 40


async def test_a_write_transaction_holds_sqlites_write_lock_from_its_start(
    sqlite_db: Database,
) -> None:
    """A deferred SQLite transaction that reads, then writes after another connection has
    committed, fails at once with "database is locked" (a stale snapshot cannot be upgraded and
    the busy timeout does not apply; CI lost a test to it). ``begin`` takes the write lock at
    BEGIN, so another writer waits instead of slipping in between the read and the write."""
    db = sqlite_db
    await create_call(db, _new_call("CA1"))
    path = db.url.removeprefix("sqlite+aiosqlite:///")
    async with db.begin() as conn:
        await conn.execute(sa.select(sa.func.count()).select_from(call_details))
        other = sqlite3.connect(path, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("UPDATE call_details SET tenant = 'other'")
        finally:
            other.close()
        await conn.execute(sa.update(call_details).values(tenant="saloon"))
    assert {c["tenant"] for c in await list_calls(db)} == {"saloon"}


# --- tenants -----------------------------------------------------------------------------------


def test_supabase_url_normalisation() -> None:
    db = Database("postgresql://u:p@h:5432/db?sslmode=require&application_name=rx&options=x")
    assert db.dialect == "postgresql"
    assert db.url == "postgresql+asyncpg://u:p@h:5432/db"
    assert db.connect_args == {"ssl": "require", "server_settings": {"application_name": "rx"}}
    # the asyncpg dialect gets no parameter it does not know
    _, kwargs = db.engine.dialect.create_connect_args(db.engine.url)
    assert "sslmode" not in kwargs and "options" not in kwargs


def test_postgres_scheme_and_pooler_flag() -> None:
    db = Database("postgres://user:pw@db.example.supabase.co:6543/postgres?pgbouncer=true")
    assert db.url.startswith("postgresql+asyncpg://user:pw@db.example.supabase.co:6543/postgres")
    assert db.connect_args["statement_cache_size"] == 0


def test_sqlite_url_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "calls.db"
    db = Database(f"sqlite:///{path}")
    assert db.dialect == "sqlite"
    assert db.url == f"sqlite+aiosqlite:///{path}"
    assert path.parent.is_dir()


def test_unsupported_url() -> None:
    with pytest.raises(DatabaseError, match="unsupported database"):
        Database("mysql://u:secret@h/db")
    with pytest.raises(DatabaseError) as info:
        Database("not a url at all")
    assert "secret" not in str(info.value)


def test_safe_url_masks_password() -> None:
    db = Database("postgresql://admin:s3cr3t-pw@h:5432/db?sslmode=require")
    assert "s3cr3t-pw" not in db.safe_url
    assert "s3cr3t-pw" not in repr(db)
    assert db.safe_url == "postgresql+asyncpg://admin:***@h:5432/db"
    assert Database.redact("postgresql://admin:s3cr3t-pw@h/db") == "postgresql://admin:***@h/db"
    assert "s3cr3t" not in Database.redact("weird://admin:s3cr3t@[bad")
    assert Database.redact("sqlite:///x.db") == "sqlite:///x.db"


async def test_ping_unreachable_database() -> None:
    port = free_port()  # nothing listens there
    db = Database(f"postgresql://u:s3cr3t@127.0.0.1:{port}/db")
    try:
        with pytest.raises(DatabaseUnavailable, match="database unreachable") as info:
            await db.ping(timeout_s=5)
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "s3cr3t" not in str(info.value)
    finally:
        await db.dispose()
