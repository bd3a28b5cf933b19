"""Claiming post-call work from call rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from receptionist.store.calls import FinishedCall, finish_call, get_call
from receptionist.store.db import Database
from receptionist.store.jobs import (
    advance,
    backoff_s,
    claim,
    reschedule,
    retry_later,
)
from receptionist.store.schema import Stage, utcnow

STAGES = ("transcript_saved",)


async def finished(db: Database, n: int, prefix: str = "CAjob") -> list[str]:
    sids = [f"{prefix}{i:04d}" for i in range(n)]
    for sid in sids:
        await finish_call(db, FinishedCall(call_sid=sid, status="completed", tenant="bakery"))
    return sids


async def test_claims_only_due_work(db: Database) -> None:
    (sid,) = await finished(db, 1)
    row = await get_call(db, sid)
    assert row is not None
    early = row["next_attempt_at"] - timedelta(seconds=1)
    assert await claim(db, worker_id="w1", stages=STAGES, lease_s=30, now=early) == []
    got = await claim(db, worker_id="w1", stages=STAGES, lease_s=30)
    assert [c.call_sid for c in got] == [sid]
    assert got[0].stage == "transcript_saved" and got[0].attempts == 0
    # Leased: nobody else gets it, nor does a claim for another stage.
    assert await claim(db, worker_id="w2", stages=STAGES, lease_s=30) == []
    assert await claim(db, worker_id="w2", stages=("analysed",), lease_s=30) == []


async def test_concurrent_workers_never_share_a_call(db: Database) -> None:
    sids = await finished(db, 12)

    async def worker(name: str) -> list[str]:
        mine: list[str] = []
        while got := await claim(db, worker_id=name, stages=STAGES, lease_s=60):
            mine += [c.call_sid for c in got]
        return mine

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    flat = [s for r in results for s in r]
    assert sorted(flat) == sids  # each claimed exactly once


async def test_a_claim_takes_no_more_than_its_limit(db: Database) -> None:
    """On PostgreSQL a LIMIT subquery with SKIP LOCKED inside an UPDATE can be re-run per row and
    claim everything; the claim must take exactly `limit` rows."""
    await finished(db, 20)
    got = await claim(db, worker_id="w1", stages=STAGES, lease_s=30, limit=4)
    assert len(got) == 4
    rest = await claim(db, worker_id="w2", stages=STAGES, lease_s=30, limit=100)
    assert len(rest) == 16


async def test_expired_lease_is_taken_over_and_the_old_owner_cannot_write(db: Database) -> None:
    (sid,) = await finished(db, 1)
    (old,) = await claim(db, worker_id="dead", stages=STAGES, lease_s=5)
    later = utcnow() + timedelta(seconds=6)
    (new,) = await claim(db, worker_id="alive", stages=STAGES, lease_s=30, now=later)
    assert new.call_sid == sid
    async with db.begin() as conn:
        assert not await advance(conn, old, worker_id="dead", to_stage="analysed")
    async with db.begin() as conn:
        assert await advance(conn, new, worker_id="alive", to_stage="analysed")
    row = await get_call(db, sid)
    assert row is not None
    assert row["stage"] == "analysed" and row["lease_owner"] is None


async def test_retry_backoff_then_failed(db: Database) -> None:
    (sid,) = await finished(db, 1)
    (c,) = await claim(db, worker_id="w", stages=STAGES, lease_s=30)
    for attempt, wait_s in ((1, 10), (2, 20)):  # the base, then doubled
        assert c.attempts == attempt - 1
        stage = await retry_later(db, c, worker_id="w", error="boom", max_attempts=3, base_s=10)
        assert stage == "transcript_saved"
        row = await get_call(db, sid)
        assert row is not None and row["attempts"] == attempt
        assert row["last_error"] == "transcript_saved: boom"
        due = row["next_attempt_at"]
        # one backoff after the failure: `updated_at` is written by the same update
        assert due - row["updated_at"] == timedelta(seconds=wait_s)
        early = due - timedelta(seconds=1)
        assert await claim(db, worker_id="w", stages=STAGES, lease_s=30, now=early) == []
        (c,) = await claim(db, worker_id="w", stages=STAGES, lease_s=30, now=due)
    assert await retry_later(db, c, worker_id="w", error="boom", max_attempts=3) == Stage.FAILED
    row = await get_call(db, sid)
    assert row is not None and row["stage"] == Stage.FAILED and row["attempts"] == 3
    assert row["next_attempt_at"] is None
    later = utcnow() + timedelta(days=365)
    assert await claim(db, worker_id="w", stages=STAGES, lease_s=30, now=later) == []  # never
    # An operator puts it back.
    assert await reschedule(db, sid, stage="transcript_saved")
    (c,) = await claim(db, worker_id="w", stages=STAGES, lease_s=30)
    assert c.attempts == 0


async def test_non_retryable_error_fails_at_once(db: Database) -> None:
    await finished(db, 1)
    (c,) = await claim(db, worker_id="w", stages=STAGES, lease_s=30)
    stage = await retry_later(
        db, c, worker_id="w", error="bad schema", max_attempts=5, retryable=False
    )
    assert stage == Stage.FAILED


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_s(a, base_s=5, cap_s=60) for a in range(1, 7)] == [5, 10, 20, 40, 60, 60]
