"""/metrics of `receptionist serve --workers 2` (the installed console script, SQLite): calls
taken by both server processes, and every scrape, whichever process answers it, counts all of
them; the in-process pipeline workers' steps are summed the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from receptionist.bridge.server import reuse_port_balances
from receptionist.bridge.session import LATENCY_SAMPLE_EVERY
from tests.integration.test_scale_out import (
    START_BOUND_S,
    Cluster,
    Doubles,
    caller_number,
    cluster_env,
    doubles,  # noqa: F401 - the fixture
    listening_sockets,
    place_calls,
    wait_ready,
)
from tests.pg import free_port
from tests.prom import Scrape, parse, sample, total

pytestmark = pytest.mark.skipif(
    not reuse_port_balances(), reason="SO_REUSEPORT balances on Linux only"
)

BATCH = 2  # calls placed together; more batches until both processes have taken one
MAX_BATCHES = 10  # the kernel spreads connections by a hash: one process taking 20 is ~1e-6
SCRAPES = 6


def started_by(multiproc_dir: Path, pid: int) -> float:
    """Calls one server process counted, read from its own file in the shared directory."""
    families = MultiProcessCollector.merge([str(multiproc_dir / f"counter_{pid}.db")])
    return sum(
        s.value for f in families for s in f.samples if s.name == "receptionist_calls_started_total"
    )


async def scrape(port: int) -> Scrape:
    """One scrape on a new connection, so the kernel picks the process that answers it."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def scrape_until(port: int, done: Callable[[Scrape], bool]) -> Scrape:
    async with asyncio.timeout(START_BOUND_S):
        while True:
            scraped = await scrape(port)
            if done(scraped):
                return scraped
            await asyncio.sleep(0.1)


def analysed(scraped: Scrape) -> float:
    return sample(
        scraped, "receptionist_pipeline_stage_seconds_count", stage="transcript_saved", outcome="ok"
    )


async def test_every_scrape_counts_the_calls_of_both_processes(
    doubles: Doubles,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = cluster_env(f"sqlite:///{tmp_path / 'r.db'}", doubles, tmp_path)
    env.update(ANALYZER="offline", NOTIFY_PROVIDER="log")  # the pipeline runs, offline
    temp = tmp_path / "tmp"  # where `serve` creates its metrics directory
    temp.mkdir()
    cluster = Cluster(env, tmp_path)
    port = free_port()
    server = cluster.start("serve", "serve", "--workers", "2", PORT=str(port), TMPDIR=str(temp))
    try:
        await wait_ready(port, server, cluster)
        async with asyncio.timeout(START_BOUND_S):
            while len(pids := set(listening_sockets(server.popen.pid, port))) < 2:
                assert server.popen.poll() is None, cluster.logs()
                await asyncio.sleep(0.1)
        (multiproc_dir,) = temp.glob("receptionist-metrics-*")

        results = []
        for _ in range(MAX_BATCHES):
            numbers = [caller_number(len(results) + i) for i in range(BATCH)]
            results += await place_calls(port, numbers)
            if all(started_by(multiproc_dir, pid) for pid in pids):
                break
        assert all(r.ok for r in results), ([r.error for r in results], cluster.logs())
        by_process = {pid: started_by(multiproc_dir, pid) for pid in pids}
        assert all(by_process.values()), by_process  # both took calls
        calls = len(results)
        assert sum(by_process.values()) == calls

        # the counts are final once every call is counted as ended (frames are added first)
        await scrape_until(port, lambda m: total(m, "receptionist_calls_ended_total") >= calls)
        for _ in range(SCRAPES):
            scraped = await scrape(port)
            assert sample(scraped, "receptionist_calls_started_total", tenant="bakery") == calls
            assert total(scraped, "receptionist_calls_ended_total", tenant="bakery") == calls
            assert total(scraped, "receptionist_calls_ended_total", status="completed") == calls
            assert sample(scraped, "receptionist_active_calls") == 0
            assert sample(scraped, "receptionist_greeting_seconds_count") == calls
            assert sample(scraped, "receptionist_frames_in_total") == sum(
                r.media_sent for r in results
            )
            # one frame in LATENCY_SAMPLE_EVERY of each call is timed into the histogram
            assert sample(scraped, "receptionist_bridge_latency_in_seconds_count") == sum(
                r.media_sent // LATENCY_SAMPLE_EVERY for r in results
            )
            assert sample(scraped, "receptionist_response_seconds_count") >= calls
            assert not any("pid" in dict(labels) for _, labels in scraped)

        # each process's own pipeline worker analysed some of the calls: summed, every one
        await scrape_until(port, lambda m: analysed(m) >= calls)
        scraped = await scrape(port)
        assert analysed(scraped) == calls
        assert total(scraped, "receptionist_pipeline_stage_seconds_count", outcome="failed") == 0

        # a process killed outright: its calls stay counted, its live gauges leave the sum
        dead = min(pids)
        assert (multiproc_dir / f"gauge_livesum_{dead}.db").exists()
        psutil.Process(dead).kill()
        async with asyncio.timeout(START_BOUND_S):
            while dead in (now := set(listening_sockets(server.popen.pid, port))) or len(now) < 2:
                assert server.popen.poll() is None, cluster.logs()
                await asyncio.sleep(0.1)
        assert not (multiproc_dir / f"gauge_livesum_{dead}.db").exists()
        scraped = await scrape(port)
        assert sample(scraped, "receptionist_calls_started_total", tenant="bakery") == calls
        assert sample(scraped, "receptionist_active_calls") == 0
    finally:
        codes = await cluster.stop()
    assert codes == {"serve": 0}, cluster.logs()
    assert not multiproc_dir.exists()  # removed with the server
