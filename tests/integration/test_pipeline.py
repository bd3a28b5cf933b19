"""The post-call pipeline on SQLite and PostgreSQL: stages, failures, and a worker killed with
SIGKILL over and over."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from receptionist.postcall.analysis import NO_CONVERSATION, Analysis
from receptionist.postcall.gemini_analyzer import GeminiAnalyzer, make_client
from receptionist.postcall.pipeline import DONE, EXOTEL_DETAILS, ExotelDeps, PipelineDeps
from receptionist.postcall.pricing import load_pricing
from receptionist.postcall.wiring import offline_analyzer
from receptionist.postcall.worker import Worker
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.exotel_api import FakeExotelApi
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.store.calls import FinishedCall, TokenUsage, finish_call, get_call
from receptionist.store.db import Database
from receptionist.store.exotel_details import get_exotel_details
from receptionist.store.schema import ai_token_usage, call_details, notifications
from receptionist.telephony.exotel_api import ExotelApiConfig
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantRepository
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
    assert steps == 5 + 5 + 1
    order = await get_call(db, "CApipe1")
    assert order is not None and order["stage"] == DONE
    assert order["call_type"] == "order"
    details = order["critical_call_details"]
    assert details["_analyzer"] == "offline"
    assert details.get("name") == "Anita"
    assert order["summary"]
    assert order["usage"][0]["total_cost"] is not None and order["usage"][0]["total_cost"] > 0
    empty = await get_call(db, "CApipe2")
    assert empty is not None and empty["call_type"] == NO_CONVERSATION
    rejected = await get_call(db, "CApipe3")
    assert rejected is not None and rejected["stage"] == DONE and rejected["call_type"] is None


async def test_unknown_price_fails_visibly_and_retry_recovers(db: Database) -> None:
    await saved_call(db, "CApipe4", ORDER, model="some-unpriced-model")
    await Worker(deps(db)).drain()
    row = await get_call(db, "CApipe4")
    assert row is not None and row["stage"] == "failed"
    assert "some-unpriced-model" in row["last_error"]
    assert row["call_type"] == "order"  # the analysis step before it stays done


async def test_transient_errors_retry_with_backoff_then_fail(db: Database) -> None:
    calls = 0

    async def flaky(
        tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
    ) -> tuple[Analysis, list[TokenUsage]]:
        nonlocal calls
        calls += 1
        raise ConnectionError("model unreachable")

    await saved_call(db, "CApipe5", ORDER)
    w = Worker(deps(db, flaky), max_attempts=3, backoff_base_s=0.05)
    for _ in range(3):
        await w.drain()
        await asyncio.sleep(0.25)
    row = await get_call(db, "CApipe5")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 3
    assert calls == 3
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


async def test_call_is_analysed_seconds_after_hangup(sqlite_db: Database, tmp_path: Path) -> None:
    turns = [
        ScriptedTurn(heard="I'd like to order six brownies for pickup tomorrow.", reply="Done!")
    ]
    async with (
        FakeGeminiLive(script=CallScript(turns=turns)) as fake,
        running_bridge(sqlite_db, tmp_path, fake, run_worker=True) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=[turns[0].heard]),
        )
        row: dict[str, Any] | None = None
        async with asyncio.timeout(10):
            while True:  # polling the database is the point: that is where the result lands
                row = await get_call(sqlite_db, result.call_sid)
                if row is not None and row["stage"] == DONE:
                    break
                await asyncio.sleep(0.05)
    assert row["call_type"] == "order"
    assert all(u["total_cost"] is not None for u in row["usage"])


# --- SIGKILL ----------------------------------------------------------------------------------


async def _progress(db: Database) -> int:
    """How many steps are done or claimed so far, summed over all calls."""
    rank = sa.case(
        (call_details.c.stage == "analysed", 1),
        (call_details.c.stage == "messages_queued", 2),
        (call_details.c.stage == "costed", 3),
        (call_details.c.stage == EXOTEL_DETAILS, 4),
        (call_details.c.stage == DONE, 5),
        else_=0,
    )
    async with db.session() as conn:
        total = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(rank), 0)))).scalar()
    return int(total or 0)


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
    env = _worker_env(db.url)
    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        before = await _progress(db)
        proc = await asyncio.create_subprocess_exec(*_worker_cmd(), env=env, cwd=REPO)
        async with asyncio.timeout(30):  # wait until it is really working ...
            while await _progress(db) == before:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(rng.uniform(0.0, 0.6))  # ... then kill it mid-stride
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        kills += 1
    await asyncio.sleep(1.2)  # the last victim's lease expires
    steps_before = await _progress(db)
    print(f"steps done before the final run: {steps_before} of {5 * n_calls}")
    assert 0 < steps_before < 5 * n_calls, "the kills must land while work is in flight"
    done = await asyncio.create_subprocess_exec(
        *_worker_cmd("--once"), env=env, cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await done.communicate()
    assert done.returncode == 0, stderr.decode()
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
    assert kills == 6
    assert stages == {DONE: n_calls}
    assert usage_rows == n_calls  # one usage row per call, never duplicated
    assert uncosted == 0
    assert typed == n_calls
    # each order call decided its two messages exactly once: the owner's alert went to the log
    # provider, the customer's was skipped (these calls have no caller number)
    orders = sum(1 for i in range(n_calls) if i % 3)
    assert messages == {"logged": orders, "skipped": orders}


async def test_worker_survives_a_database_outage() -> None:
    broken = Database("postgresql://nobody@127.0.0.1:9/nowhere")
    w = Worker(deps(broken), poll_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await asyncio.sleep(0.5)
    assert not task.done()  # still alive, backing off
    stop.set()
    await asyncio.wait_for(task, 5)
    assert w.steps_done == 0
    await broken.dispose()


# --- Exotel's call record ---------------------------------------------------------------------


async def _exotel_run(
    db: Database,
    fake: FakeExotelApi,
    *,
    deadline_s: float = 60.0,
    rounds: int = 1,
    backoff_base_s: float = 5.0,
) -> Worker:
    async with httpx.AsyncClient() as http:
        ex = ExotelDeps(
            config=ExotelApiConfig(
                account_sid="ACtest", api_key="key", api_token="token", base_url=fake.base_url
            ),
            http=http,
            deadline_s=deadline_s,
            first_delay_s=0.05,
            max_delay_s=0.1,
        )
        w = Worker(
            PipelineDeps(**{**deps(db).__dict__, "exotel": ex}), backoff_base_s=backoff_base_s
        )
        for _ in range(rounds):
            await w.drain()
            await asyncio.sleep(0.15)
    return w


async def test_exotel_record_is_fetched_last(db: Database) -> None:
    await saved_call(db, "CAexo1", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="token") as fake:
        fake.add_call("CAexo1", from_number="09812345678", to_number="08047001234", duration_s=42)
        await _exotel_run(db, fake)
    row = await get_call(db, "CAexo1")
    assert row is not None and row["stage"] == DONE and row["call_type"] == "order"
    rec = await get_exotel_details(db, "CAexo1")
    assert rec is not None
    assert rec["call_duration"] == 42 and rec["call_status"] == "completed"
    assert rec["from_number"] == "09812345678" and rec["exotel_data"]["Sid"] == "CAexo1"


async def test_exotel_record_not_final_yet_is_polled_again(db: Database) -> None:
    await saved_call(db, "CAexo2", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="token") as fake:
        fake.add_call("CAexo2", from_number="0981", to_number="0804", final_after_s=0.4)
        fake.add_call("CAexo3", from_number="0981", to_number="0804")
        await _exotel_run(db, fake, rounds=1)
        row = await get_call(db, "CAexo2")
        assert row is not None and row["stage"] == EXOTEL_DETAILS
        assert "waiting for" in row["last_error"]
        partial = await get_exotel_details(db, "CAexo2")
        assert partial is not None and partial["call_duration"] is None  # visible already
        await _exotel_run(db, fake, rounds=6)
        polls = [r for r in fake.requests if "CAexo2" in r.path]
    row = await get_call(db, "CAexo2")
    assert row is not None and row["stage"] == DONE and row["last_error"] is None
    rec = await get_exotel_details(db, "CAexo2")
    assert rec is not None and rec["call_duration"] is not None
    assert len(polls) >= 2


async def test_exotel_gives_up_waiting_after_the_deadline(db: Database) -> None:
    await saved_call(db, "CAexo4", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="token") as fake:
        fake.add_call("CAexo4", from_number="0981", to_number="0804", final_after_s=3600)
        await _exotel_run(db, fake, deadline_s=0.0)
    row = await get_call(db, "CAexo4")
    assert row is not None and row["stage"] == DONE
    assert "Exotel record incomplete" in row["last_error"]


async def test_exotel_bad_credentials_fail_visibly(db: Database) -> None:
    await saved_call(db, "CAexo5", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="other") as fake:
        fake.add_call("CAexo5", from_number="0981", to_number="0804")
        await _exotel_run(db, fake)
    row = await get_call(db, "CAexo5")
    assert row is not None and row["stage"] == "failed"
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
    assert row is not None and row["stage"] == DONE
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
    async with FakeGeminiRest() as fake:
        fake.script(Fault(status=503))
        w = await _gemini_run(db, fake, backoff_base_s=0.05)
        row = await get_call(db, "CAgem3")
        assert row is not None and row["stage"] == "transcript_saved" and row["attempts"] == 1
        assert "analyzer" in row["last_error"]
        await asyncio.sleep(0.1)
        await w.drain()  # the double now gives its default (valid) answer
    row = await get_call(db, "CAgem3")
    assert row is not None and row["stage"] == DONE


async def test_call_of_a_vanished_tenant_fails_with_a_clear_reason(db: Database) -> None:
    await saved_call(db, "CAgone", ORDER, tenant="closedshop")
    await Worker(deps(db)).drain()
    row = await get_call(db, "CAgone")
    assert row is not None and row["stage"] == "failed" and row["attempts"] == 1
    assert "tenant unavailable" in row["last_error"] and "closedshop" in row["last_error"]


async def test_exotel_outage_is_retried_then_fetched(db: Database) -> None:
    await saved_call(db, "CAexo6", ORDER)
    async with FakeExotelApi(account_sid="ACtest", api_key="key", api_token="token") as fake:
        fake.add_call("CAexo6", from_number="0981", to_number="0804")
        fake.fail_next(1, status=503)
        await _exotel_run(db, fake, backoff_base_s=0.05)
        row = await get_call(db, "CAexo6")
        assert row is not None and row["stage"] == EXOTEL_DETAILS
        assert "Exotel server" in row["last_error"]
        await asyncio.sleep(0.1)  # the retry is due after the backoff
        await _exotel_run(db, fake)
    row = await get_call(db, "CAexo6")
    assert row is not None and row["stage"] == DONE
