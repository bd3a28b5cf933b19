"""Where a live call's memory goes: a diagnosis switch, off unless asked for.

With RECEPTIONIST_TRACEMALLOC=<directory> the bridge process traces its Python allocations
(tracemalloc, RECEPTIONIST_TRACEMALLOC_FRAMES deep, default 8; 0 traces nothing and reports
only resident memory by kind of mapping, from /proc/self/smaps) and watches how many calls are
live. When no call is live after some were, it takes a baseline snapshot (the idle process,
warm); each time the live calls reach a new high it takes another and writes
`<directory>/memtrace.json`: the growth over the baseline divided by the live calls, grouped by
allocating line and by call stack, largest first. Each new high of RSS (by 1 MB) during a run
writes `memtrace_peak.json` the same way, divided by the most calls live in the run (as
bench/bridge_load.py divides its peak): the start and end bursts show there. Tracing slows the
process (roughly 2x CPU) and adds its own bookkeeping to RSS, so RSS figures come from runs
without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

ENV = "RECEPTIONIST_TRACEMALLOC"
ENV_FRAMES = "RECEPTIONIST_TRACEMALLOC_FRAMES"
POLL_S = 0.25
TOP = 40
# A new high must be this much above the last snapshot's calls to be worth another snapshot
# (each one stops the event loop for a moment).
STEP = 1.2
SETTLE_POLLS = 4  # idle this many polls after calls before the baseline
PEAK_STEP_KB = 1024  # RSS highs are recorded in steps of this much
_PREFIXES = sorted({p for p in sys.path if p}, key=len, reverse=True)


def _short(filename: str) -> str:
    for prefix in _PREFIXES:
        if filename.startswith(prefix):
            return filename[len(prefix) :].lstrip("/")
    return filename


def resident_kb() -> dict[str, int]:
    """This process's resident memory by kind of mapping (Linux; empty elsewhere): the C heap
    ([heap] and anonymous mappings: malloc arenas, large blocks, thread stacks) against the
    files (code, libraries). tracemalloc sees only Python's allocations; this sees all."""
    out: dict[str, int] = {}
    kind = "anon"
    try:
        with open("/proc/self/smaps", "rb") as f:
            for line in f:
                head = line.split(None, 6)
                if len(head) >= 5 and b"-" in head[0] and not head[0].endswith(b":"):
                    path = head[5].strip().decode(errors="replace") if len(head) > 5 else ""
                    kind = path if path.startswith("[") else ("file" if path else "anon")
                elif head and head[0] == b"Rss:":
                    out[kind] = out.get(kind, 0) + int(head[1])
    except OSError:
        return {}
    return out


def summarize(
    base: tracemalloc.Snapshot,
    peak: tracemalloc.Snapshot,
    calls: int,
    base_calls: int = 0,
) -> dict[str, Any]:
    """Growth from `base` to `peak` per call (`calls - base_calls` more calls live at `peak`)."""
    n = max(1, calls - base_calls)
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    base, peak = base.filter_traces(keep), peak.filter_traces(keep)

    def rows(key: str, limit: int) -> list[dict[str, Any]]:
        out = []
        for s in peak.compare_to(base, key)[:limit]:
            frames = [f"{_short(f.filename)}:{f.lineno}" for f in s.traceback]
            out.append(
                {
                    "kb_per_call": round(s.size_diff / 1024 / n, 2),
                    "blocks_per_call": round(s.count_diff / n, 2),
                    "where": frames[0] if key == "lineno" else frames,
                }
            )
        return out

    total = sum(s.size for s in peak.statistics("filename"))
    total_base = sum(s.size for s in base.statistics("filename"))
    return {
        "calls_live": calls,
        "baseline_calls_live": base_calls,
        "traced_kb_baseline": round(total_base / 1024),
        "traced_kb_peak": round(total / 1024),
        "traced_kb_per_call": round((total - total_base) / 1024 / n, 1),
        "by_line": rows("lineno", TOP),
        "by_stack": rows("traceback", TOP // 2),
    }


def rss_growth(before: dict[str, int], after: dict[str, int], calls: int) -> dict[str, float]:
    """resident_kb() growth per call, by kind of mapping."""
    kinds = sorted(set(before) | set(after))
    n = max(1, calls)
    growth = {k: round((after.get(k, 0) - before.get(k, 0)) / n, 1) for k in kinds}
    return {k: v for k, v in growth.items() if v}


async def watch(out_dir: Path, live_calls: Callable[[], int], stop: asyncio.Event) -> None:
    """The loop described in the module docstring; ends when `stop` is set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base: tracemalloc.Snapshot | None = None
    base_rss: dict[str, int] | None = None
    seen_calls = False
    snapped = 0  # live calls at the last peak snapshot since the baseline
    idle_polls = 0
    max_live = 0  # the most calls live since the baseline (the bench divides by its concurrency)
    peak = 0  # the highest RSS since the baseline, KB
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)
        live = live_calls()
        idle_polls = 0 if live else idle_polls + 1
        # idle for a while after calls (their rows are written after they leave the registry):
        # the warm baseline for the next run
        if seen_calls and idle_polls >= SETTLE_POLLS:
            seen_calls, snapped, max_live = False, 0, 0
            base = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
            base_rss = resident_kb()
            peak = _rss_kb()
        if live:
            seen_calls = True
            max_live = max(max_live, live)
        if base_rss is None:
            continue
        if live > snapped * STEP:  # a new high of live calls: the steady state per call
            snapped = live
            _write(out_dir / "memtrace.json", base, base_rss, live, live)
        rss = _rss_kb()
        if max_live and rss > peak + PEAK_STEP_KB:  # a new high of RSS (start and end bursts)
            peak = rss
            _write(out_dir / "memtrace_peak.json", base, base_rss, live, max_live)


def _rss_kb() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _write(
    path: Path,
    base: tracemalloc.Snapshot | None,
    base_rss: dict[str, int],
    live: int,
    per: int,
) -> None:
    """Growth since the baseline divided by `per` calls (`live` are live now)."""
    summary: dict[str, Any] = {"calls_live": live, "per_calls": per}
    summary["rss_kb_per_call_by_mapping"] = rss_growth(base_rss, resident_kb(), per)
    if base is not None:
        summary.update(summarize(base, tracemalloc.take_snapshot(), per))
        summary["calls_live"] = live
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    log.warning("memtrace: %d live calls, %s", live, summary["rss_kb_per_call_by_mapping"])


def start_from_env(live_calls: Callable[[], int], stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Start tracing and the watcher if RECEPTIONIST_TRACEMALLOC names a directory."""
    where = os.environ.get(ENV)
    if not where:
        return None
    frames = int(os.environ.get(ENV_FRAMES) or 8)
    if frames > 0 and not tracemalloc.is_tracing():  # 0: resident memory by mapping only
        tracemalloc.start(max(1, min(frames, 64)))
    log.warning("memtrace: tracing allocations into %s", where)
    return asyncio.create_task(watch(Path(where), live_calls, stop))
