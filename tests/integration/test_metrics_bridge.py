"""/metrics of an in-process bridge: guarded by METRICS_TOKEN when one is set, the event-loop lag
monitor running from the app's start (admission control reads `ctx.loop_lag`), and what a call's
faults and turns add to the counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from pydantic import SecretStr

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, Failure, FakeGeminiLive, ScriptedTurn
from receptionist.store.db import Database
from tests.integration.bridge_harness import running_bridge
from tests.prom import Changes, parse

TURNS = [
    ScriptedTurn(heard="Are you open today?", reply="Yes, until nine."),
    ScriptedTurn(heard="Do you deliver?", reply="Yes, nearby."),
]


async def test_metrics_token_and_loop_lag(sqlite_db: Database, tmp_path: Path) -> None:
    async with (
        FakeGeminiLive(script=CallScript(turns=[])) as fake,
        running_bridge(sqlite_db, tmp_path, fake, metrics_token=SecretStr("s3cret")) as bridge,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as http,
    ):
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/plain")
        names = {name for name, _ in parse(ok.text)}
        assert "receptionist_event_loop_lag_seconds" in names
        assert (await http.get("/healthz")).status_code == 200  # only /metrics is guarded

        monitor = bridge.ctx.loop_lag
        async with asyncio.timeout(30):  # its task measures from the app's start
            while not monitor.running:  # noqa: ASYNC110 - started by the app's lifespan
                await asyncio.sleep(0.01)
    assert not monitor.running  # stopped with the app


async def test_engine_faults_and_turns_are_counted(sqlite_db: Database, tmp_path: Path) -> None:
    changes = Changes()
    # the socket closes after the greeting and one reply, and no new session can be opened
    lost = Failure(close_after_turns=2, fail_sessions_from=1)
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS), failure=lost) as fake,
        running_bridge(sqlite_db, tmp_path, fake) as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Are you open today?", "Do you deliver?"]),
        )
        assert result.closed_by == "server"
    async with (
        FakeGeminiLive(failure=Failure(fail_setup=True)) as fake,
        running_bridge(sqlite_db, tmp_path / "second", fake) as bridge,
    ):
        await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False), CallerScript(utterances=["Hi"])
        )
    assert changes("receptionist_engine_errors_total", kind="session_lost") == 1
    assert changes("receptionist_engine_errors_total", kind="connect_failed") == 1
    assert changes("receptionist_calls_started_total", tenant="bakery") == 2
    failed = changes("receptionist_calls_ended_total", status="failed", tenant="bakery")
    assert failed == 2
    assert changes("receptionist_calls_ended_total", reason="engine_error") == 1
    assert changes("receptionist_calls_ended_total", reason="engine_unavailable") == 1
    assert changes("receptionist_response_seconds_count") == 1  # the one reply before the fault
    assert changes("receptionist_active_calls") == 0
