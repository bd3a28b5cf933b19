"""/metrics of an in-process bridge: guarded by METRICS_TOKEN when one is set, and the event-loop
lag monitor running from the app's start (admission control reads `ctx.loop_lag`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from pydantic import SecretStr

from receptionist.sim.gemini_live import CallScript, FakeGeminiLive
from receptionist.store.db import Database
from tests.integration.bridge_harness import running_bridge
from tests.prom import parse


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
