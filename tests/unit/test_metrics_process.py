"""/metrics with several processes on one port: one scrape, whichever process answers, sums every
process's samples (prometheus_client's multiprocess mode); a dead process's live gauges leave
the sum, its counters stay.

The processes here are plain Python processes that count like server processes do (the mode is
picked when prometheus_client is first imported, so each is a fresh interpreter); the served
version is in tests/integration/test_metrics_serve.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from receptionist.bridge.loop_lag import LoopLagMonitor
from receptionist.bridge.server import _shared_metrics_dir
from receptionist.observe import metrics
from tests.prom import Scrape, parse, sample, total

# What one server process does for one call, in its own interpreter.
ONE_CALL = """
import sys
from receptionist.observe import metrics as m
m.CALLS_STARTED.labels("bakery").inc()
m.ACTIVE_CALLS.inc()
m.LATENCY_IN.observe(0.0004)
m.FRAMES_IN.inc(50)
m.CALLS_ENDED.labels("completed", "stop", "bakery").inc()
m.EVENT_LOOP_LAG.set(float(sys.argv[1]))
import os
print(os.getpid())
"""


def run_process(code: str, *args: str, multiproc_dir: Path) -> int:
    """Run `code` in a fresh interpreter counting into `multiproc_dir`; returns its pid."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(multiproc_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, timeout=60
    )
    assert not proc.stderr, proc.stderr
    return int(proc.stdout)


def scrape_of(multiproc_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Scrape:
    """What /metrics of any process counting into `multiproc_dir` answers."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(multiproc_dir))
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return parse(body.decode())


def test_one_scrape_sums_every_process_and_forgets_a_dead_ones_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_process(ONE_CALL, "0.002", multiproc_dir=tmp_path)
    second = run_process(ONE_CALL, "0.080", multiproc_dir=tmp_path)
    assert first != second

    scraped = scrape_of(tmp_path, monkeypatch)
    assert sample(scraped, "receptionist_calls_started_total", tenant="bakery") == 2
    assert total(scraped, "receptionist_calls_ended_total", status="completed") == 2
    assert sample(scraped, "receptionist_frames_in_total") == 100
    assert sample(scraped, "receptionist_bridge_latency_in_seconds_count") == 2
    assert sample(scraped, "receptionist_bridge_latency_in_seconds_bucket", le="0.0005") == 2
    assert sample(scraped, "receptionist_active_calls") == 2  # livesum
    assert sample(scraped, "receptionist_event_loop_lag_seconds") == 0.080  # livemax: the worst
    assert not any("pid" in dict(labels) for _, labels in scraped)  # no series per process

    metrics.mark_process_dead(second)  # what the supervisor does when a process dies
    scraped = scrape_of(tmp_path, monkeypatch)
    assert sample(scraped, "receptionist_active_calls") == 1
    assert sample(scraped, "receptionist_event_loop_lag_seconds") == 0.002
    assert sample(scraped, "receptionist_calls_started_total", tenant="bakery") == 2  # it happened


def test_one_process_without_a_directory_renders_its_own_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    before = metrics.value("receptionist_calls_rejected_total", {"reason": "no_start"})
    metrics.CALLS_REJECTED.labels("no_start").inc()
    body, _ = metrics.exposition()
    scraped = parse(body.decode())
    assert sample(scraped, "receptionist_calls_rejected_total", reason="no_start") == before + 1
    names = {name for name, _ in scraped}
    assert {"receptionist_active_calls", "receptionist_frames_in_total"} <= names
    assert not any(name.endswith("_created") for name in names)


def test_each_serve_invocation_gets_a_fresh_directory_removed_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    with _shared_metrics_dir() as first:
        assert os.environ[metrics.MULTIPROC_ENV] == first
        assert os.path.isdir(first) and not os.listdir(first)
        (Path(first) / "counter_1.db").write_bytes(b"")
    assert not os.path.exists(first)
    assert metrics.MULTIPROC_ENV not in os.environ
    with _shared_metrics_dir() as second:
        assert second != first and not os.listdir(second)


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("bakery", "bakery"),
        ("stop:callended", "stop"),
        ("caller_disconnected", "caller_disconnected"),
        ("", "unknown"),
        (None, "unknown"),
        ("+919812345678", "unknown"),  # never a phone number
        ("CA" + "f" * 60, "unknown"),
        ("Bakery", "unknown"),
        ("a b", "unknown"),
    ],
)
def test_label_values_are_short_identifiers_of_ours(raw: str | None, label: str) -> None:
    assert metrics.bounded(raw) == label


async def test_loop_lag_is_how_late_a_wakeup_fires() -> None:
    monitor = LoopLagMonitor(interval_s=0.01)
    monitor.start()
    try:
        await asyncio.sleep(0)  # the monitor's first sleep has begun
        # the loop is blocked on purpose: that wake-up cannot fire before this ends
        time.sleep(0.1)  # noqa: ASYNC251
        async with asyncio.timeout(30):
            while monitor.max_lag_s == 0.0:  # noqa: ASYNC110 - polls the monitor's figure
                await asyncio.sleep(0.01)
    finally:
        await monitor.stop()
    assert monitor.max_lag_s >= 0.1 - 0.01
    assert metrics.value("receptionist_event_loop_lag_seconds") == monitor.lag_s


def test_loop_lag_record_never_negative() -> None:
    monitor = LoopLagMonitor(window=3)  # lag_s: the median of the last three samples
    monitor.record(-0.001)  # a timer may fire a hair early
    assert monitor.lag_s == 0.0
    monitor.record(0.2)
    monitor.record(0.01)
    assert (monitor.lag_s, monitor.max_lag_s) == (0.01, 0.2)
