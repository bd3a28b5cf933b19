"""Bookings that cannot collide, and tools inside a call, measured.

    .venv/bin/python bench/bookings.py [--attempts 1000] [--concurrency 200] \
        [--db sqlite|postgresql] [--calls 20] [--json bench/results/bookings_<db>_<date>.json]

Part 1, contention: `--attempts` callers try to `book` the same slot at once (at most
`--concurrency` in flight), each through its own ToolBox (the code a call runs), on a fresh
database. Exactly one may win; every other must be offered the next free slot. Written: the
winners, the double bookings found in the table afterwards (active rows for that slot beyond
one: must be 0), the losers offered another slot, and the `book` call's p50/p99/max.

Part 1b, overlapping starts: `--attempts` holds of one resource at once, straight at the store,
at four starts 15 minutes apart, each an hour long (as after a tenant changed its slot grid):
one may win; written: the winners and the pairs of live bookings that overlap (must be 0).

Part 2, tools inside calls (`--calls 0`: skipped): `--calls` simulated Exotel calls (real
time, 8 kHz) through a real bridge (uvicorn on loopback, google-genai) to the Gemini Live
double, whose model calls
check_slot then book after the caller's turns. Written: the tool round trip as the bridge sees
it (`toolCall` received -> `toolResponse` sent, GeminiLiveEngine.tool_round_trips_ms) and as
the double sees it (sent -> answer received), p50/p99; and beside it, from the same calls'
rows, the bridge's per-frame cost (latency_in / latency_out: the work per audio frame, as
bench/bridge_load.py reports it).

One process, loopback only. PostgreSQL is a throw-away server like the tests' (tests/pg.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from pydantic import SecretStr

from _common import REPO_ROOT, git_commit, machine_info, percentile, write_json
from receptionist.bridge.app import create_app
from receptionist.bridge.latency import LatencyHistogram
from receptionist.bridge.server import serve_in_process, uvicorn_options
from receptionist.bridge.wiring import build_context
from receptionist.config import load_settings
from receptionist.engines.factory import make_engine_factory
from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedToolCall, ScriptedTurn
from receptionist.store import bookings as store
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.schema import bookings
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant
from receptionist.tools.runner import ToolBox, ToolContext

TOOLS = """
[tools]
enabled = ["check_slot", "book", "quote", "order_status", "handoff"]

[booking]
slot_minutes = 60
hold_minutes = 10
resources = ["Priya"]
opens = "10:00"
closes = "20:00"
"""
# Monday 2026-12-07 09:00 in Chennai: the contended slot is the next day's 16:00.
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def tenants_root(tmp: Path) -> Path:
    root = tmp / "tenants"
    for name in ("saloon", "bakery"):
        shutil.copytree(REPO_ROOT / "tenants" / name, root / name)
    toml = root / "saloon" / "tenant.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + TOOLS, encoding="utf-8")
    return root


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


async def contention(db: Database, tenant: Tenant, attempts: int, concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    args = {"date": "2026-12-08", "time": "16:00", "name": "Caller"}

    async def one(i: int) -> dict[str, Any]:
        box = ToolBox(
            ToolContext(tenant=tenant, db=db, call_sid=f"CAbench{i}", clock=lambda: NOW),
            timeout_s=60.0,  # measured here, not cut short
        )
        async with gate:
            t0 = time.perf_counter()
            out = await box.run("book", dict(args))
            times.append((time.perf_counter() - t0) * 1000.0)
        return out

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(attempts)))
    wall = time.perf_counter() - t0
    won = [r for r in results if r.get("booked") is True]
    lost = [r for r in results if r.get("booked") is False]
    offered = [r for r in lost if r.get("next_free")]
    errors = [r for r in results if "error" in r]
    b = bookings.c
    async with db.session() as conn:
        active = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(bookings)
                .where(
                    b.tenant == tenant.tenant_id,
                    b.kind == "slot",
                    b.starts_at == datetime(2026, 12, 8, 10, 30, tzinfo=UTC),  # 16:00 IST
                    b.status.in_(("pending", "confirmed")),
                )
            )
        ).scalar_one()
    return {
        "attempts": attempts,
        "concurrency": concurrency,
        "winners": len(won),
        "losers_offered_next_free": len(offered),
        "losers_without_offer": len(lost) - len(offered),
        "errors": len(errors),
        "error_samples": [e["error"] for e in errors[:3]],
        "active_rows_for_the_slot": active,
        "double_bookings": max(0, active - 1),
        "next_free_offered": offered[0]["next_free"][0] if offered else None,
        "book_ms_p50": _r(percentile(times, 50)),
        "book_ms_p99": _r(percentile(times, 99)),
        "book_ms_max": _r(max(times) if times else None),
        "wall_s": _r(wall),
    }


async def overlapping(db: Database, attempts: int, concurrency: int) -> dict[str, Any]:
    """`attempts` holds of one resource at once, straight at the store (as from many processes,
    below the tools' in-process queue), at four different starts 15 minutes apart, each an
    hour long (a booking made on an older slot grid beside the new one's): every two overlap,
    so exactly one may win. Double bookings: pairs of live rows that overlap (must be 0)."""
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    base = datetime(2026, 12, 9, 4, 30, tzinfo=UTC)  # 10:00 IST the day after part 1's

    async def one(i: int) -> store.Booking | None:
        start = base + timedelta(minutes=15 * (i % 4))
        hold = store.SlotHold(
            "saloon", "Priya", start, start + timedelta(hours=1), timedelta(minutes=10),
            call_sid=f"CAover{i}",
        )  # fmt: skip
        async with gate:
            t0 = time.perf_counter()
            got = await store.hold_slot(db, hold, now=NOW)
            times.append((time.perf_counter() - t0) * 1000.0)
        return got

    t0 = time.perf_counter()
    held = await asyncio.gather(*(one(i) for i in range(attempts)))
    wall = time.perf_counter() - t0
    b = bookings.c
    async with db.session() as conn:
        rows = (
            await conn.execute(
                sa.select(b.starts_at, b.ends_at).where(
                    b.tenant == "saloon",
                    b.kind == "slot",
                    b.starts_at >= base,
                    b.starts_at < base + timedelta(hours=2),
                    store.live_at(NOW),
                )
            )
        ).all()
    clashes = sum(
        1 for i, x in enumerate(rows) for y in rows[i + 1 :] if x[0] < y[1] and x[1] > y[0]
    )
    return {
        "attempts": attempts,
        "concurrency": concurrency,
        "distinct_starts": 4,
        "winners": len([h for h in held if h is not None]),
        "live_rows": len(rows),
        "double_bookings": clashes,
        "hold_ms_p50": _r(percentile(times, 50)),
        "hold_ms_p99": _r(percentile(times, 99)),
        "wall_s": _r(wall),
    }


async def calls_with_tools(db: Database, root: Path, tmp: Path, n: int) -> dict[str, Any]:
    def script(_setup: dict[str, Any]) -> CallScript:
        return CallScript(
            turns=[
                ScriptedTurn(
                    heard="Is 4 pm free tomorrow?",
                    reply="Let me see. Five is free.",
                    tool_calls=[
                        ScriptedToolCall("check_slot", {"date": "tomorrow", "time": "16:00"})
                    ],
                ),
                ScriptedTurn(
                    heard="Book it please.",
                    reply="Booked.",
                    tool_calls=[
                        ScriptedToolCall(
                            "book", {"date": "tomorrow", "time": "17:00", "name": "Asha"}
                        )
                    ],
                ),
            ]
        )

    engines: list[Any] = []
    async with FakeGeminiLive(api_key="bench-key", script=script) as fake:
        cfg = load_settings(
            database_url=db.url,
            tenants_dir=root,
            spool_dir=tmp / "spool",
            gemini_api_key=SecretStr("bench-key"),
            gemini_base_url=fake.base_url,
            gemini_ca_file=Path(fake.ca_file),
            keepalive_interval_s=0,
            run_worker=False,
            analyzer="offline",
        )
        factory = make_engine_factory(cfg)

        def keeping(request: Any) -> Any:
            engine = factory(request)
            engines.append(engine)
            return engine

        ctx = build_context(cfg, db=db, engine_factory=keeping)
        async with serve_in_process(create_app(ctx), **uvicorn_options(cfg)) as port:
            url = f"ws://127.0.0.1:{port}/exotel/saloon"
            results = await asyncio.gather(
                *(
                    place_call(
                        CallOptions(url=url, realtime=True, from_number=f"+9198000{i:05d}"),
                        CallerScript(utterances=["Is 4 pm free tomorrow?", "Book it please."]),
                    )
                    for i in range(n)
                )
            )
        sessions = list(fake.sessions)
    ok = [r for r in results if r.ok]
    bridge_ms = [ms for e in engines for ms in getattr(e, "tool_round_trips_ms", ())]
    double_ms = [
        (c.answered_perf - c.sent_perf) * 1000.0
        for s in sessions
        for c in s.tool_calls
        if c.answered_perf is not None
    ]
    h_in, h_out = LatencyHistogram(), LatencyHistogram()
    answers: dict[str, int] = {}
    for s in sessions:
        for c in s.tool_calls:
            key = f"{c.name}:{'answered' if c.response is not None else 'unanswered'}"
            answers[key] = answers.get(key, 0) + 1
    for r in ok:
        row = await get_call(db, r.call_sid)
        stats = (row or {}).get("stats") or {}
        if stats.get("latency_in"):
            h_in.merge(LatencyHistogram.from_json(stats["latency_in"]))
        if stats.get("latency_out"):
            h_out.merge(LatencyHistogram.from_json(stats["latency_out"]))
    return {
        "calls": n,
        "calls_ok": len(ok),
        "tool_calls": answers,
        "tool_round_trip_bridge_ms_p50": _r(percentile(bridge_ms, 50)),
        "tool_round_trip_bridge_ms_p99": _r(percentile(bridge_ms, 99)),
        "tool_round_trip_bridge_n": len(bridge_ms),
        "tool_round_trip_at_double_ms_p50": _r(percentile(double_ms, 50)),
        "tool_round_trip_at_double_ms_p99": _r(percentile(double_ms, 99)),
        "frame_cost_in_ms_p50": _r(h_in.percentile_ms(50) if h_in.count else None),
        "frame_cost_in_ms_p99": _r(h_in.percentile_ms(99) if h_in.count else None),
        "frame_cost_out_ms_p50": _r(h_out.percentile_ms(50) if h_out.count else None),
        "frame_cost_out_ms_p99": _r(h_out.percentile_ms(99) if h_out.count else None),
        "frames_in": h_in.count,
        "frames_out": h_out.count,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bookings-"))
    load_before = os.getloadavg()
    pg: Any = None
    try:
        if args.db == "postgresql":
            from tests.pg import ThrowawayPostgres

            pg = ThrowawayPostgres().start()
            url = await pg.create_database_async()
        else:
            url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        db = Database(url, pool_size=min(args.concurrency, 50))
        await db.upgrade()
        root = tenants_root(tmp)
        tenant, problems = load_tenant(root, "saloon")
        assert tenant is not None, problems
        log(f"contention: {args.attempts} attempts, {args.concurrency} at once ({args.db})")
        part1 = await contention(db, tenant, args.attempts, args.concurrency)
        log(f"  {part1}")
        log(f"overlapping starts: {args.attempts} holds at 4 starts 15 minutes apart")
        part1b = await overlapping(db, args.attempts, args.concurrency)
        log(f"  {part1b}")
        part2: dict[str, Any] = {}
        if args.calls:
            log(f"tools in {args.calls} calls through the bridge")
            part2 = await calls_with_tools(db, root, tmp, args.calls)
            log(f"  {part2}")
        await db.dispose()
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "bench": "bookings",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine_info(),
        "db": args.db,
        # this machine is shared: a load above its cores stretches every figure
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        "contention": part1,
        "overlapping": part1b,
        "calls": part2,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attempts", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--calls", type=int, default=20, help="0: no calls through the bridge")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        write_json(args.json, result)
    c, o, calls = result["contention"], result["overlapping"], result["calls"]
    line = (
        f"{c['attempts']} attempts: {c['winners']} won, {c['double_bookings']} double bookings,"
        f" book p99 {c['book_ms_p99']} ms; overlapping starts: {o['winners']} won,"
        f" {o['double_bookings']} double bookings"
    )
    if calls:
        line += (
            f"; tool round trip p50/p99 {calls['tool_round_trip_bridge_ms_p50']}/"
            f"{calls['tool_round_trip_bridge_ms_p99']} ms; frame cost in p99"
            f" {calls['frame_cost_in_ms_p99']} ms"
        )
    print(line)
    if c["double_bookings"] or c["winners"] != 1 or o["double_bookings"] or o["winners"] != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
