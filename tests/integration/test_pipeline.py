"""The post-call pipeline on SQLite and PostgreSQL: stages, failures, and a worker killed with
SIGKILL over and over."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from receptionist.gemini_rest import make_client
from receptionist.postcall.analyzers.gemini import GeminiAnalyzer
from receptionist.postcall.analyzers.schema import NO_CONVERSATION, Analysis
from receptionist.postcall.pipeline import (
    PENDING_STAGES,
    ExotelDeps,
    PipelineDeps,
)
from receptionist.postcall.pricing import default_pricing_path, load_pricing, parse_pricing
from receptionist.postcall.wiring import offline_analyzer
from receptionist.postcall.worker import Worker
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.exotel_api import FakeExotelApi
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.store.calls import FinishedCall, finish_call, get_call
from receptionist.store.db import Database
from receptionist.store.exotel_details import get_exotel_details
from receptionist.store.handoffs import (
    get_handoff,
    record_handoff,
    record_handoff_answer,
    record_handoff_outcome,
)
from receptionist.store.jobs import reschedule
from receptionist.store.schema import (
    NOTIFY_QUEUED,
    NOTIFY_SENDING,
    NOTIFY_UNKNOWN,
    Stage,
    ai_token_usage,
    call_details,
    notifications,
    utcnow,
)
from receptionist.telephony.exotel_api import ExotelApiConfig
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantRepository
from receptionist.usage import TokenUsage
from tests.integration.bridge_harness import REPO, TENANTS, running_bridge

MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
ORDER = [
    {
        "speaker": "agent",
        "text": "Sweet Crumbs Bakery, how can I help?",
        "start_ms": 0,
        "end_ms": 900,
    },
    {
        "speaker": "caller",
        "text": "I want to order six chocolate brownies and a milk bread for pickup tomorrow "
        "at 5 pm. My name is Anita, my number is 98123 45678.",
        "start_ms": 1000,
        "end_ms": 6000,
    },
    {"speaker": "agent", "text": "Done, Anita!", "start_ms": 6500, "end_ms": 7500},
]


def deps(db: Database, analyzer: Any = offline_analyzer) -> PipelineDeps:
    return PipelineDeps(
        db=db, tenants=TenantRepository(TENANTS), pricing=load_pricing(), analyzer=analyzer
    )


class _Clock:
    """The worker's "now", frozen until the test moves it: a retry comes due because the test
    says so, never because enough real time went by. Make it after saving the calls, so they
    are due at once."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def reach(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


def _wait_written(row: dict[str, Any]) -> timedelta:
    """How long after a failed or deferred attempt the next one is set: `next_attempt_at` and
    `updated_at` are written by the same update from the same "now", so this is exact."""
    return row["next_attempt_at"] - row["updated_at"]


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, bound_s: float = 60) -> None:
    """Wait until `check()` holds. The bound only turns a hang into a failure, it is no claim
    about speed, so it is generous."""
    try:
        async with asyncio.timeout(bound_s):
            while not await check():  # noqa: ASYNC110 - the condition lives in the database
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not after {bound_s:g} s: {what}")


async def _stage(db: Database, call_sid: str) -> str | None:
    row = await get_call(db, call_sid)
    return None if row is None else str(row["stage"])


async def saved_call(
    db: Database,
    sid: str,
    transcript: list[dict[str, Any]],
    *,
    tenant: str = "bakery",
    status: str = "completed",
    model: str = MODEL,
) -> None:
    usage = [
        TokenUsage(
            model_name=model,
            input_tokens=1000,
            output_tokens=200,
            input_audio_tokens=900,
            input_text_tokens=100,
            output_audio_tokens=200,
        )
    ]
    await finish_call(
        db,
        FinishedCall(
            call_sid=sid, status=status, tenant=tenant, transcript=transcript, usage=usage
        ),
    )


async def test_stages_to_done_with_analysis_and_cost(db: Database) -> None:
    await saved_call(db, "CApipe1", ORDER)
    await saved_call(db, "CApipe2", [])
    await saved_call(db, "CApipe3", [], status="rejected")
    steps = await Worker(deps(db)).drain()
    assert steps == 4 + 4 + 1  # the rejected call goes straight to done
    order = await get_call(db, "CApipe1")
    assert order is not None and order["stage"] == Stage.DONE
    assert order["call_type"] == "order"
    details = order["critical_call_details"]
    assert details["_analyzer"] == "offline"
    assert details.get("name") == "Anita"
    assert order["summary"]
    assert order["usage"][0]["total_cost"] is not None and order["usage"][0]["total_cost"] > 0
    empty = await get_call(db, "CApipe2")
    assert empty is not None and empty["call_type"] == NO_CONVERSATION
    rejected = await get_call(db, "CApipe3")
    assert (
        rejected is not None and rejected["stage"] == Stage.DONE and rejected["call_type"] is None
    )


async def test_unknown_price_fails_visibly_and_retry_recovers(db: Database) -> None:
    await saved_call(db, "CApipe4", ORDER, model="some-unpriced-model")
    await Worker(deps(db)).drain()
    row = await get_call(db, "CApipe4")
    assert row is not None and row["stage"] == "failed"
    assert "some-unpriced-model" in row["last_error"]
    assert row["call_type"] == "order"  # the analysis step before it stays done
    # The operator adds the price and retries from the costing step (`calls retry --stage`).
    priced = parse_pricing(
        default_pricing_path().read_text(encoding="utf-8")
        + '\n[[price]]\nmodel = "some-unpriced-model"\nvalid_from = 2025-01-01\n'
        'currency = "USD"\naudio_input = "1.00"\ntext_input = "1.00"\n'
        'audio_output = "1.00"\ntext_output = "1.00"\nsource = "test"\n',
        origin="test",
    )
    assert await reschedule(db, "CApipe4", stage=Stage.MESSAGES_QUEUED)
    await Worker(PipelineDeps(**{**deps(db).__dict__, "pricing": priced})).drain()
    row = await get_call(db, "CApipe4")
    assert row is not None and row["stage"] == Stage.DONE and row["call_type"] == "order"
    [usage] = row["usage"]
    assert usage["total_cost"] is not None and usage["total_cost"] > 0


async def test_transient_errors_retry_with_backoff_then_fail(db: Database) -> None:
    calls = 0

    async def flaky(
        tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
    ) -> tuple[Analysis, list[TokenUsage]]:
        nonlocal calls
        calls += 1
        raise ConnectionError("model unreachable")

    await saved_call(db, "CApipe5", ORDER)
    clock = _Clock()
    w = Worker(deps(db, flaky), max_attempts=3, backoff_base_s=30, clock=clock)
    for attempt, backoff_s in ((1, 30), (2, 60)):  # the base, then doubled
        await w.drain()
        row = await get_call(db, "CApipe5")
        assert row is not None and row["stage"] == "transcript_saved"
        assert calls == attempt and row["attempts"] == attempt
        assert _wait_written(row) == timedelta(seconds=backoff_s)
        await w.drain()  # until then the call is not due: nothing runs
        assert calls == attempt
        clock.reach(row["next_attempt_at"])
    await w.drain()
    row = await get_call(db, "CApipe5")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 3
    assert calls == 3
    assert row["next_attempt_at"] is None  # given up: nothing scheduled
    assert "ConnectionError: model unreachable" in row["last_error"]


async def test_invalid_analysis_is_not_retried(db: Database) -> None:
    async def wrong(
        tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
    ) -> tuple[Analysis, list[TokenUsage]]:
        return Analysis(call_type="haircut", summary="?", details={}), []

    await saved_call(db, "CApipe6", ORDER)
    await Worker(deps(db, wrong)).drain()
    row = await get_call(db, "CApipe6")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 1
    assert "unknown call type 'haircut'" in row["last_error"]


async def test_call_is_analysed_as_soon_as_the_bridge_saves_it(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """The bridge wakes its in-process worker when it saves a call. The worker is first put
    into an hour-long poll wait, so only that wake-up can get the call analysed."""
    turns = [
        ScriptedTurn(heard="I'd like to order six brownies for pickup tomorrow.", reply="Done!")
    ]
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as fake,
        running_bridge(sqlite_db, tmp_path, fake, run_worker=True) as bridge,
    ):
        worker = bridge.ctx.worker
        assert worker is not None
        worker.poll_s = 3600.0
        worker.wake.set()  # it ends its current short wait, finds nothing, clears the flag ...

        async def waiting() -> bool:  # ... and has begun the hour-long wait once it is clear
            return not worker.wake.is_set()

        await _eventually(waiting, "the worker went back to waiting")
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=[turns[0].heard]),
        )

        async def done() -> bool:
            return await _stage(sqlite_db, result.call_sid) == Stage.DONE

        await _eventually(done, "the saved call went through the pipeline")
    row = await get_call(sqlite_db, result.call_sid)
    assert row is not None and row["call_type"] == "order"
    assert [u["purpose"] for u in row["usage"]] == ["live"]  # the offline analyzer spends none
    assert row["usage"][0]["total_cost"] is not None and row["usage"][0]["total_cost"] > 0


# --- SIGKILL ----------------------------------------------------------------------------------


async def _progress(db: Database) -> int:
    """How many steps are done or claimed so far, summed over all calls."""
    rank = sa.case(
        (call_details.c.stage == "analysed", 1),
        (call_details.c.stage == "messages_queued", 2),
        (call_details.c.stage == Stage.EXOTEL_DETAILS, 3),
        (call_details.c.stage == Stage.DONE, 4),
        else_=0,
    )
    async with db.session() as conn:
        total = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(rank), 0)))).scalar()
    return int(total or 0)


async def _held_by(db: Database, pid: int) -> int:
    """Calls with steps left that the worker process `pid` has claimed (its worker id is
    host:pid:random) and not finished: after a SIGKILL, the work it dropped mid-way."""
    c = call_details.c
    async with db.session() as conn:
        n = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(call_details)
                .where(c.lease_owner.like(f"%:{pid}:%"), c.stage.in_(PENDING_STAGES))
            )
        ).scalar()
    return int(n or 0)


async def _unsettled(db: Database) -> int:
    """Calls with steps left plus messages not yet resolved (queued, being sent, or unknown and
    to be looked at again)."""
    c, n = call_details.c, notifications.c
    async with db.session() as conn:
        calls = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(call_details)
                .where(c.stage.in_(PENDING_STAGES))
            )
        ).scalar()
        messages = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(notifications)
                .where(n.status.in_([NOTIFY_QUEUED, NOTIFY_SENDING, NOTIFY_UNKNOWN]))
            )
        ).scalar()
    return int(calls or 0) + int(messages or 0)


def _worker_env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "TENANTS_DIR": str(TENANTS),
        "LOG_LEVEL": "WARNING",
        "PIPELINE_LEASE_S": "1",  # a killed worker's claims free up quickly
    }


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "receptionist.cli", "worker", *args]


@pytest.mark.parametrize("n_calls", [300])
async def test_sigkill_at_any_moment_loses_nothing_and_repeats_nothing(
    db: Database, n_calls: int
) -> None:
    for i in range(n_calls):
        await saved_call(db, f"CAkill{i:04d}", ORDER if i % 3 else [])
    all_steps = 4 * n_calls
    env = _worker_env(db.url)
    rng = random.Random(7)
    kills = 0  # kills that landed mid-work: the victim held calls it had claimed, not finished
    rounds = 0
    while kills < 6:
        rounds += 1
        assert rounds <= 30, f"only {kills} of {rounds - 1} kills landed while work was in hand"
        # kill after a random number of steps, so the kills land at varied points of the work
        target = await _progress(db) + rng.randint(1, 40)
        proc = await asyncio.create_subprocess_exec(*_worker_cmd(), env=env, cwd=REPO)
        try:

            async def far_enough(
                target: int = target, proc: asyncio.subprocess.Process = proc
            ) -> bool:
                # (or it ended by itself: the assertion below then says so)
                return await _progress(db) >= target or proc.returncode is not None

            await _eventually(far_enough, f"a worker got to {target} steps", bound_s=300)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL  # it was killed, it did not end on its own
        if await _held_by(db, proc.pid) and await _progress(db) < all_steps:
            kills += 1
    print(f"{kills} kills mid-work in {rounds} rounds")
    steps_before = await _progress(db)
    print(f"steps done before the final run: {steps_before} of {all_steps}")
    assert 0 < steps_before < all_steps, "the kills must land while work is in flight"
    # A last worker takes over the dead ones' leases once they expire and finishes the work;
    # a step that meets a transient error on the way is retried after its backoff, so wait
    # for the work to be settled rather than for one pass to be enough.
    last = await asyncio.create_subprocess_exec(*_worker_cmd(), env=env, cwd=REPO)
    try:

        async def settled() -> bool:
            return await _unsettled(db) == 0 or last.returncode is not None

        await _eventually(settled, "the last worker finished the work", bound_s=600)
        assert last.returncode is None, "the last worker stopped on its own"
    finally:
        if last.returncode is None:
            last.send_signal(signal.SIGTERM)  # the worker's own graceful stop
        async with asyncio.timeout(60):
            await last.wait()
    assert last.returncode == 0
    async with db.session() as conn:
        stages = dict(
            (
                await conn.execute(
                    sa.select(call_details.c.stage, sa.func.count()).group_by(call_details.c.stage)
                )
            ).all()
        )
        usage_rows = (
            await conn.execute(sa.select(sa.func.count()).select_from(ai_token_usage))
        ).scalar()
        uncosted = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(ai_token_usage)
                .where(ai_token_usage.c.total_cost.is_(None))
            )
        ).scalar()
        typed = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(call_details)
                .where(call_details.c.call_type.is_not(None))
            )
        ).scalar()
        messages = dict(
            (
                await conn.execute(
                    sa.select(notifications.c.status, sa.func.count()).group_by(
                        notifications.c.status
                    )
                )
            ).all()
        )
    assert stages == {Stage.DONE: n_calls}
    assert usage_rows == n_calls  # one usage row per call, never duplicated
    assert uncosted == 0
    assert typed == n_calls
    # each order call decided its two messages exactly once: the owner's alert went to the log
    # provider, the customer's was skipped (these calls have no caller number)
    orders = sum(1 for i in range(n_calls) if i % 3)
    assert messages == {"logged": orders, "skipped": orders}


class _Outage(Database):
    """The test's database behind a switch: while `down`, opening a connection fails the way an
    unreachable server's does, and each refused attempt is counted."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.refused = 0

    def _gate(self) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError("connection refused (the test's database outage)")

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncConnection]:
        self._gate()
        async with super().session() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        self._gate()
        async with super().begin() as conn:
            yield conn


async def test_worker_survives_a_database_outage(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await saved_call(db, "CAdown", ORDER)
    outage = _Outage(db.url)
    outage.down = True
    w = Worker(deps(outage), poll_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:

        async def tried_thrice() -> bool:  # or gave up: then there is no point waiting
            return outage.refused >= 3 or task.done()

        await _eventually(tried_thrice, "the worker kept trying while the database was down")
        assert not task.done(), "the worker gave up during the outage"
        assert w.steps_done == 0
        row = await get_call(db, "CAdown")
        assert row is not None and row["stage"] == "transcript_saved"
        assert row["attempts"] == 0  # the outage cost the call none of its attempts
        outage.down = False

        async def done() -> bool:
            return await _stage(db, "CAdown") == Stage.DONE

        await _eventually(done, "the call went through once the database was back")
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await task
        await outage.dispose()
    assert w.steps_done == 4
    assert "cannot claim work" in caplog.text  # the outage was logged


# --- Exotel's call record ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _exotel_worker(
    db: Database,
    fake: FakeExotelApi,
    clock: _Clock,
    *,
    deadline_s: float = 60.0,
    on_request: Callable[[httpx.Request], Awaitable[None]] | None = None,
) -> AsyncIterator[Worker]:
    hooks = {"request": [on_request]} if on_request else {}
    async with httpx.AsyncClient(event_hooks=hooks) as http:
        ex = ExotelDeps(
            config=ExotelApiConfig(
                account_sid="ACtest", api_key="key", api_token="token", base_url=fake.base_url
            ),
            http=http,
            deadline_s=deadline_s,
            first_delay_s=15.0,
            max_delay_s=120.0,
        )
        yield Worker(
            PipelineDeps(**{**deps(db).__dict__, "exotel": ex}), backoff_base_s=30, clock=clock
        )


def _exotel_api() -> FakeExotelApi:
    return FakeExotelApi(account_sid="ACtest", api_key="key", api_token="token")


async def test_exotel_record_is_fetched_last(db: Database) -> None:
    await saved_call(db, "CAexo1", ORDER)
    at_fetch: list[tuple[str, str, list[bool]]] = []

    async def look(request: httpx.Request) -> None:  # what was done when Exotel was asked
        row = await get_call(db, "CAexo1")
        assert row is not None
        costed = [u["total_cost"] is not None for u in row["usage"]]
        at_fetch.append((row["stage"], row["call_type"], costed))

    async with _exotel_api() as fake:
        fake.add_call("CAexo1", from_number="09812345678", to_number="08047001234", duration_s=42)
        async with _exotel_worker(db, fake, _Clock(), on_request=look) as w:
            await w.drain()
    assert at_fetch == [(Stage.EXOTEL_DETAILS, "order", [True])]  # analysed and costed before
    row = await get_call(db, "CAexo1")
    assert row is not None and row["stage"] == Stage.DONE and row["call_type"] == "order"
    rec = await get_exotel_details(db, "CAexo1")
    assert rec is not None
    assert rec["call_duration"] == 42 and rec["call_status"] == "completed"
    assert rec["from_number"] == "09812345678" and rec["exotel_data"]["Sid"] == "CAexo1"


async def test_the_person_a_hand_off_rang_is_recorded_from_the_calls_legs(db: Database) -> None:
    """A call the Connect applet put through: its record is asked for with `details=true`, and
    the second leg's status and talk time go on the hand-off (who answered: the one number
    rung). A call with no hand-off is asked for plainly."""
    await saved_call(db, "CAhand1", ORDER)
    await saved_call(db, "CAhand2", ORDER)
    await saved_call(db, "CAplain", ORDER)
    await record_handoff(db, "CAhand1", who="the owner", reason="wants to speak to the owner")
    await record_handoff_outcome(db, "CAhand1", "ringing", "+919800000001")
    await record_handoff(db, "CAhand2", who=None, reason="complaint")
    await record_handoff_outcome(db, "CAhand2", "ringing", "+919800000001, +919800000002")
    # two rung, the pass-through's Answered event named who picked up
    await saved_call(db, "CAhand3", ORDER)
    await record_handoff(db, "CAhand3", who=None, reason="complaint")
    await record_handoff_outcome(db, "CAhand3", "ringing", "+919800000001, +919800000002")
    assert await record_handoff_answer(db, "CAhand3", "+919800000002", utcnow()) == "recorded"
    async with _exotel_api() as fake:
        fake.add_call("CAhand3", from_number="0981", to_number="0804", leg2=("completed", 12))
        fake.add_call("CAhand1", from_number="0981", to_number="0804", leg2=("completed", 73))
        fake.add_call("CAhand2", from_number="0981", to_number="0804", leg2=("no-answer", 0))
        fake.add_call("CAplain", from_number="0981", to_number="0804")
        asked: list[str] = []

        async def look(request: httpx.Request) -> None:
            asked.append(f"{request.url.path.rsplit('/', 1)[-1]}?{request.url.query.decode()}")

        async with _exotel_worker(db, fake, _Clock(), on_request=look) as w:
            await w.drain()
    assert sorted(asked) == [
        "CAhand1.json?details=true", "CAhand2.json?details=true",
        "CAhand3.json?details=true", "CAplain.json?",
    ]  # fmt: skip
    one = await get_handoff(db, "CAhand1")
    assert one is not None and one["reason"] == "wants to speak to the owner"
    assert one["person_leg"] == {
        "status": "completed",
        "talk_s": 73,
        "answered_by": "+919800000001",
    }
    two = await get_handoff(db, "CAhand2")
    assert two is not None
    assert two["person_leg"] == {"status": "no-answer", "talk_s": 0, "answered_by": None}
    three = await get_handoff(db, "CAhand3")
    assert three is not None
    assert three["person_leg"] == {
        "status": "completed",
        "talk_s": 12,
        "answered_by": "+919800000002",
    }
    assert await get_handoff(db, "CAplain") is None


async def test_exotel_record_not_final_yet_is_polled_again(db: Database) -> None:
    await saved_call(db, "CAexo2", ORDER)
    async with _exotel_api() as fake:
        exotel_now = [0.0]
        fake.clock = lambda: exotel_now[0]  # Exotel finalises the record when the test says so
        fake.add_call("CAexo2", from_number="0981", to_number="0804", final_after_s=300)
        fake.add_call("CAexo3", from_number="0981", to_number="0804")

        def polls() -> int:
            return sum("CAexo2" in r.path for r in fake.requests)

        clock = _Clock()
        async with _exotel_worker(db, fake, clock) as w:
            for n, delay_s in ((1, 15), (2, 30)):  # not final yet: asked again later, and later
                await w.drain()
                assert polls() == n
                row = await get_call(db, "CAexo2")
                assert row is not None and row["stage"] == Stage.EXOTEL_DETAILS
                assert "waiting for" in row["last_error"]
                assert _wait_written(row) == timedelta(seconds=delay_s)
                partial = await get_exotel_details(db, "CAexo2")
                assert partial is not None and partial["call_duration"] is None  # visible already
                await w.drain()  # not due again yet: Exotel is not asked again
                assert polls() == n
                clock.reach(row["next_attempt_at"])
            exotel_now[0] = 300.0
            await w.drain()
            assert polls() == 3
    row = await get_call(db, "CAexo2")
    assert row is not None and row["stage"] == Stage.DONE and row["last_error"] is None
    rec = await get_exotel_details(db, "CAexo2")
    assert rec is not None and rec["call_duration"] is not None


async def test_exotel_gives_up_waiting_after_the_deadline(db: Database) -> None:
    await saved_call(db, "CAexo4", ORDER)
    async with _exotel_api() as fake:
        fake.add_call("CAexo4", from_number="0981", to_number="0804", final_after_s=3600)
        async with _exotel_worker(db, fake, _Clock(), deadline_s=0.0) as w:
            await w.drain()
    row = await get_call(db, "CAexo4")
    assert row is not None and row["stage"] == Stage.DONE
    assert "Exotel record incomplete" in row["last_error"]
    rec = await get_exotel_details(db, "CAexo4")
    assert rec is not None and rec["call_duration"] is None  # what there was is kept


async def test_exotel_bad_credentials_fail_visibly(db: Database) -> None:
    await saved_call(db, "CAexo5", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="other") as fake:
        fake.add_call("CAexo5", from_number="0981", to_number="0804")
        async with _exotel_worker(db, fake, _Clock()) as w:
            await w.drain()
    row = await get_call(db, "CAexo5")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 1
    assert "Exotel auth" in row["last_error"]
    assert row["call_type"] == "order"  # everything before it is done


# --- the Gemini analyzer (real SDK → generateContent double) ---------------------------------


async def _gemini_run(db: Database, fake: FakeGeminiRest, **worker: Any) -> Worker:
    analyzer = GeminiAnalyzer(make_client("test-key", base_url=fake.base_url)).analyze
    w = Worker(deps(db, analyzer), **worker)
    await w.drain()
    return w


async def test_gemini_analysis_and_its_tokens_are_stored_and_costed(db: Database) -> None:
    await saved_call(db, "CAgem1", ORDER)
    answer = {
        "call_type": "order",
        "summary": "Anita orders six brownies for tomorrow 5 pm.",
        "details": {"name": "Anita", "phone": "+919812345678", "date": "2026-11-26"},
    }
    async with FakeGeminiRest() as fake:
        fake.script(json.dumps(answer))
        await _gemini_run(db, fake)
        request = fake.requests[0]
    assert request.response_mime_type == "application/json"
    row = await get_call(db, "CAgem1")
    assert row is not None and row["stage"] == Stage.DONE
    assert row["call_type"] == "order" and row["summary"] == answer["summary"]
    assert row["critical_call_details"]["_analyzer"] == "gemini-2.5-flash"
    usage = {u["purpose"]: u for u in row["usage"]}
    assert set(usage) == {"live", "analysis"}
    assert usage["analysis"]["model_name"] == "gemini-2.5-flash"
    assert usage["analysis"]["input_tokens"] > 0 and usage["analysis"]["total_cost"] is not None


async def test_gemini_invalid_twice_fails_with_answers_and_tokens_kept(db: Database) -> None:
    await saved_call(db, "CAgem2", ORDER)
    async with FakeGeminiRest() as fake:
        fake.script("not json at all", '{"call_type": "haircut", "summary": "x", "details": {}}')
        await _gemini_run(db, fake)
    row = await get_call(db, "CAgem2")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 1
    assert "not json at all" in row["last_error"] and "haircut" in row["last_error"]
    assert [u["purpose"] for u in row["usage"] if u["purpose"] == "analysis"] == ["analysis"]


async def test_gemini_outage_is_retried(db: Database) -> None:
    await saved_call(db, "CAgem3", ORDER)
    clock = _Clock()
    async with FakeGeminiRest() as fake:
        fake.script(Fault(status=503))
        w = await _gemini_run(db, fake, backoff_base_s=30, clock=clock)
        row = await get_call(db, "CAgem3")
        assert row is not None and row["stage"] == "transcript_saved" and row["attempts"] == 1
        assert "analyzer" in row["last_error"]
        assert _wait_written(row) == timedelta(seconds=30)
        await w.drain()  # not due yet
        assert len(fake.requests) == 1
        clock.reach(row["next_attempt_at"])
        await w.drain()  # the double now gives its default (valid) answer
        assert len(fake.requests) == 2
    row = await get_call(db, "CAgem3")
    assert row is not None and row["stage"] == Stage.DONE


async def test_call_of_a_vanished_tenant_fails_with_a_clear_reason(db: Database) -> None:
    await saved_call(db, "CAgone", ORDER, tenant="closedshop")
    await Worker(deps(db)).drain()
    row = await get_call(db, "CAgone")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 1
    assert "tenant unavailable" in row["last_error"] and "closedshop" in row["last_error"]


async def test_exotel_outage_is_retried_then_fetched(db: Database) -> None:
    await saved_call(db, "CAexo6", ORDER)
    async with _exotel_api() as fake:
        fake.add_call("CAexo6", from_number="0981", to_number="0804")
        fake.fail_next(1, status=503)
        clock = _Clock()
        async with _exotel_worker(db, fake, clock) as w:
            await w.drain()
            row = await get_call(db, "CAexo6")
            assert row is not None and row["stage"] == Stage.EXOTEL_DETAILS and row["attempts"] == 1
            assert "Exotel server" in row["last_error"]
            assert _wait_written(row) == timedelta(seconds=30)  # the worker's backoff
            await w.drain()  # not due yet: Exotel is not asked again
            assert len(fake.requests) == 1
            clock.reach(row["next_attempt_at"])
            await w.drain()
        assert [r.status_code for r in fake.requests] == [503, 200]
    row = await get_call(db, "CAexo6")
    assert row is not None and row["stage"] == Stage.DONE
