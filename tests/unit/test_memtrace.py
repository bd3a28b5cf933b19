"""The memory diagnosis switch: growth between an idle and a busy snapshot, per live call, and
the watcher that takes them as the live calls come and go."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import orjson
import pytest

from receptionist.bridge import memtrace

HELD: list[bytearray] = []


def _hold(calls: int) -> None:
    for _ in range(calls):
        HELD.append(bytearray(100 * 1024))  # 100 KB "per call", all from this line


HOLD_LINE = f"test_memtrace.py:{_hold.__code__.co_firstlineno + 2}"


def test_summarize_divides_the_growth_by_the_live_calls() -> None:
    tracemalloc.start(4)
    try:
        base = tracemalloc.take_snapshot()
        _hold(5)
        peak = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        HELD.clear()
    summary = memtrace.summarize(base, peak, calls=5)
    top = summary["by_line"][0]
    assert top["where"].endswith(HOLD_LINE)
    assert 99 < top["kb_per_call"] < 102  # (and the list that holds them: a few blocks)
    assert summary["traced_kb_per_call"] >= 99
    assert summary["by_stack"][0]["where"][-1].endswith(HOLD_LINE)


async def test_the_watcher_snapshots_idle_then_each_new_high(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(memtrace.ENV, str(tmp_path))
    monkeypatch.setattr(memtrace, "POLL_S", 0.001)
    # every poll is a "high", even one where RSS went down since the last (no RSS luck)
    monkeypatch.setattr(memtrace, "PEAK_STEP_KB", -(1 << 40))
    live = [0]
    polled = asyncio.Event()

    def live_calls() -> int:
        polled.set()
        return live[0]

    async def polls(n: int = 3) -> None:  # the watcher has looked at least this many times
        for _ in range(n):
            polled.clear()
            await polled.wait()

    stop = asyncio.Event()
    task = memtrace.start_from_env(live_calls, stop)
    assert task is not None
    try:
        live[0] = 1  # a warm-up call, then idle: the baseline
        await polls()
        live[0] = 0
        await polls(memtrace.SETTLE_POLLS + 2)
        live[0] = 4
        _hold(4)
        await polls()
    finally:
        stop.set()
        await task
        tracemalloc.stop()
        HELD.clear()
    summary = orjson.loads((tmp_path / "memtrace.json").read_bytes())
    assert summary["calls_live"] == 4
    peak = orjson.loads((tmp_path / "memtrace_peak.json").read_bytes())
    assert peak["per_calls"] == 4 and peak["calls_live"] == 4
    assert summary["by_line"][0]["where"].endswith(HOLD_LINE)


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memtrace.ENV, raising=False)
    assert memtrace.start_from_env(lambda: 0, asyncio.Event()) is None
    assert not tracemalloc.is_tracing()
