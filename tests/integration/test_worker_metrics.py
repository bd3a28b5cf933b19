"""The pipeline worker's metrics: stage durations by outcome, the backlog gauge, cost per tenant,
notification outcomes; and `receptionist worker` serving them on WORKER_METRICS_PORT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from receptionist.postcall.pipeline import PENDING_STAGES
from receptionist.postcall.worker import Worker
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from tests.integration.test_pipeline import ORDER, TENANTS, deps, saved_call
from tests.pg import free_port
from tests.prom import Changes, Scrape, parse, sample, total

BOUND_S = 60.0  # a broken build's bound, never a speed requirement


async def test_steps_backlog_and_cost_are_counted(sqlite_db: Database) -> None:
    changes = Changes()
    await saved_call(sqlite_db, "CAmet1", ORDER)
    await saved_call(sqlite_db, "CAmet2", ORDER, model="some-unpriced-model")
    worker = Worker(deps(sqlite_db))
    await worker.refresh_backlog(force=True)
    assert changes.now("receptionist_pipeline_backlog", state="due") == 2
    assert changes.now("receptionist_pipeline_backlog", state="claimed") == 0

    await worker.drain()
    for stage in PENDING_STAGES:  # the priced call went through every step once
        assert changes("receptionist_pipeline_stage_seconds_count", stage=stage) >= 1
    assert changes("receptionist_pipeline_stage_seconds_count", outcome="ok") == 4 + 2
    # the unpriced model fails its costing step for good (not retryable)
    assert (
        changes(
            "receptionist_pipeline_stage_seconds_count", stage="messages_queued", outcome="failed"
        )
        == 1
    )
    row = await get_call(sqlite_db, "CAmet1")
    assert row is not None
    spent = sum(Decimal(str(u["total_cost"])) for u in row["usage"])
    assert spent > 0
    assert abs(changes("receptionist_cost_usd_total", tenant="bakery") - float(spent)) < 1e-9
    await worker.refresh_backlog(force=True)
    assert changes.now("receptionist_pipeline_backlog", state="due") == 0


async def test_worker_command_serves_its_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = Database(url)
    try:
        await db.upgrade()
        await saved_call(db, "CAmet3", ORDER)
    finally:
        await db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TENANTS_DIR": str(TENANTS),
        "HOST": "127.0.0.1",
        "ANALYZER": "offline",
        "NOTIFY_PROVIDER": "log",
        "NOTIFY_AI": "off",
        "WORKER_METRICS_PORT": str(port),
        "METRICS_TOKEN": "w0rker",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    log = tmp_path / "worker.log"
    proc = start_worker(env, log)
    try:
        scraped = await scrape_until(port, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()
    assert total(scraped, "receptionist_pipeline_stage_seconds_count", outcome="ok") == 4
    assert total(scraped, "receptionist_notifications_total", provider="log") >= 1
    assert total(scraped, "receptionist_notifications_total", status="failed") == 0
    assert sample(scraped, "receptionist_cost_usd_total", tenant="bakery") > 0
    assert ("receptionist_pipeline_backlog", frozenset({("state", "due")})) in scraped


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "receptionist.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def scrape_until(port: int, proc: subprocess.Popen[bytes], log: Path) -> Scrape:
    """Scrape the worker's port until the call is through its pipeline and its messages out."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with httpx.AsyncClient(timeout=5.0) as http, asyncio.timeout(BOUND_S):
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                assert (await http.get(url)).status_code == 401  # METRICS_TOKEN guards it
                answer = await http.get(url, headers={"Authorization": "Bearer w0rker"})
                scraped = parse(answer.text)
                steps = total(scraped, "receptionist_pipeline_stage_seconds_count", outcome="ok")
                sent = total(scraped, "receptionist_notifications_total")
                if steps >= 4 and sent >= 1:
                    return scraped
            await asyncio.sleep(0.1)
