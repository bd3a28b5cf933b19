"""Bench of the durable post-call pipeline: how long after hang-up a call is analysed and done,
and how many calls per second W standalone workers get through, on SQLite and PostgreSQL.

    .venv/bin/python bench/pipeline.py [--calls 500] [--workers 1,2] [--db sqlite,postgresql] \
        [--json bench/results/pipeline.json]

For each database and each worker count: a fresh database (SQLite temp file; PostgreSQL in a
throw-away server from tests/pg.py), upgraded to head; W `receptionist worker` subprocesses; a
warm-up until they are idle-polling; then N finished bakery calls inserted back to back with
`store.calls.finish_call` (the bridge's hang-up write) while this process polls the call rows'
stages every ~20 ms. There is no per-stage timestamp column, so stage times are the first poll
that saw the stage (see bench/README.md, "pipeline.py").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.pg

import sqlalchemy as sa

from _common import REPO_ROOT, git_commit, machine_info, percentile, write_json
from receptionist.store.calls import FinishedCall, finish_call
from receptionist.store.db import Database
from receptionist.store.schema import Stage, call_details
from receptionist.usage import TokenUsage

MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
POLL_S = 0.02
STAGE_RANK = {
    Stage.TRANSCRIPT_SAVED: 0,
    Stage.ANALYSED: 1,
    Stage.MESSAGES_QUEUED: 2,
    Stage.EXOTEL_DETAILS: 3,
    Stage.DONE: 4,
    Stage.FAILED: 9,
}
SID_PREFIX = "CAbench"
WARMUP_PREFIX = "CAwarm"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- realistic bakery calls ---------------------------------------------------------------------

NAMES = ["Anita", "Ravi", "Priya", "Suresh", "Meena", "Arjun", "Kavya", "Imran", "Lakshmi", "Rahul"]
ITEMS = [
    ("chocolate brownies", "a milk bread"),
    ("butter croissants", "a loaf of whole wheat bread"),
    ("blueberry muffins", "a garlic bread"),
    ("plum cakes", "a pack of cookies"),
    ("cinnamon rolls", "a brown bread"),
    ("veg puffs", "a multigrain loaf"),
]
NUMBERS = ["two", "four", "six", "eight", "ten", "twelve"]
WHEN = ["tomorrow at 5 pm", "today at 7 pm", "on Saturday at 11 am", "tomorrow morning at 9"]
ENQUIRIES = [
    "Are you open today? Till what time?",
    "Do you have eggless cakes? How much is a one kg eggless black forest?",
    "Do you deliver to Koramangala?",
]


def transcript(i: int, rng: random.Random) -> list[dict[str, Any]]:
    """Mostly orders in the shape of tests/integration/test_pipeline.py's ORDER, varied; every
    fifth call an enquiry; every 25th call empty (hung up before speaking)."""
    if i % 25 == 24:
        return []
    greet = {
        "speaker": "agent",
        "text": "Sweet Crumbs Bakery, how can I help?",
        "start_ms": 0,
        "end_ms": 900,
    }
    if i % 5 == 4:
        q = ENQUIRIES[rng.randrange(len(ENQUIRIES))]
        return [
            greet,
            {"speaker": "caller", "text": q, "start_ms": 1000, "end_ms": 4000},
            {
                "speaker": "agent",
                "text": "Yes, we are open until nine pm and we do have that.",
                "start_ms": 4500,
                "end_ms": 7000,
            },
            {"speaker": "caller", "text": "Okay, thank you.", "start_ms": 7200, "end_ms": 8000},
        ]
    name = NAMES[rng.randrange(len(NAMES))]
    many, one = ITEMS[rng.randrange(len(ITEMS))]
    qty = NUMBERS[rng.randrange(len(NUMBERS))]
    when = WHEN[rng.randrange(len(WHEN))]
    phone = f"98{rng.randrange(100, 999)} {rng.randrange(10000, 99999)}"
    return [
        greet,
        {
            "speaker": "caller",
            "text": f"I want to order {qty} {many} and {one} for pickup {when}. "
            f"My name is {name}, my number is {phone}.",
            "start_ms": 1000,
            "end_ms": 6000,
        },
        {"speaker": "agent", "text": f"Done, {name}!", "start_ms": 6500, "end_ms": 7500},
    ]


def finished(sid: str, tr: list[dict[str, Any]]) -> FinishedCall:
    usage = [
        TokenUsage(
            model_name=MODEL,
            input_tokens=1000,
            output_tokens=200,
            input_audio_tokens=900,
            input_text_tokens=100,
            output_audio_tokens=200,
        )
    ]
    return FinishedCall(
        call_sid=sid, status="completed", tenant="bakery", transcript=tr, usage=usage
    )


# --- worker processes --------------------------------------------------------------------------


class WorkerProc:
    """One `receptionist worker` subprocess, stopped by its own pid."""

    def __init__(self, idx: int, db_url: str, log_path: Path) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "TENANTS_DIR": str(REPO_ROOT / "tenants"),
            "LOG_LEVEL": "WARNING",
        }
        self.idx = idx
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "receptionist.cli", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
        )
        self.ps = psutil.Process(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_s(self) -> float:
        try:
            t = self.ps.cpu_times()
            return t.user + t.system
        except psutil.NoSuchProcess:
            return 0.0

    def stop(self) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode

    def log_lines(self) -> list[str]:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace").splitlines()
        return []


def pg_server_procs(pg: Any) -> list[psutil.Process]:
    """The throw-away PostgreSQL postmaster and its backends (for their CPU time)."""
    with contextlib.suppress(Exception):
        pid = int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def procs_cpu_s(procs: list[psutil.Process]) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


# --- one run -----------------------------------------------------------------------------------


async def _stages(db: Database, prefix: str) -> dict[str, str]:
    c = call_details.c
    async with db.session() as conn:
        rows = (
            await conn.execute(sa.select(c.call_sid, c.stage).where(c.call_sid.like(prefix + "%")))
        ).all()
    return {r.call_sid: r.stage for r in rows}


async def _wait_stage_done(db: Database, sids: list[str], workers: list[WorkerProc]) -> None:
    async with asyncio.timeout(60):
        while True:
            st = await _stages(db, WARMUP_PREFIX)
            if all(st.get(s) in ("done", "failed") for s in sids):
                return
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"worker {w.idx} exited:\n" + "\n".join(w.log_lines()[-30:]))
            await asyncio.sleep(0.05)


async def _warm_up(db: Database, workers: list[WorkerProc]) -> dict[str, Any]:
    """Warm-up calls until done (imports, first analysis), then wait until every worker's CPU
    is flat (idle-polling: one claim query per second)."""
    t0 = time.monotonic()
    rng = random.Random(1)
    k = 0
    for _round in range(2):
        sids = []
        for _ in range(4 * len(workers)):
            sid = f"{WARMUP_PREFIX}{k:04d}"
            k += 1
            await finish_call(db, finished(sid, transcript(k, rng)))
            sids.append(sid)
        await _wait_stage_done(db, sids, workers)
    # idle: each worker used < 5 % of a core over 1.2 s (longer than its 1 s poll interval)
    async with asyncio.timeout(60):
        while True:
            before = [w.cpu_s() for w in workers]
            await asyncio.sleep(1.2)
            after = [w.cpu_s() for w in workers]
            if all((a - b) / 1.2 < 0.05 for a, b in zip(after, before, strict=True)):
                break
    return {"warmup_calls": k, "warmup_s": round(time.monotonic() - t0, 2)}


async def run_one(db_url: str, kind: str, n_workers: int, args: Any, tmp: Path, pg: Any) -> dict:
    db = Database(db_url)
    poll_db = Database(db_url)
    await db.upgrade()
    workers = [
        WorkerProc(i, db_url, tmp / f"worker-{kind}-{n_workers}-{i}.log") for i in range(n_workers)
    ]
    try:
        warm = await _warm_up(db, workers)
        log(f"{kind}, {n_workers} worker(s): warmed up ({warm}); inserting {args.calls} calls")
        rng = random.Random(42)
        sids = [f"{SID_PREFIX}{i:05d}" for i in range(args.calls)]
        calls = [finished(s, transcript(i, rng)) for i, s in enumerate(sids)]
        hangup: dict[str, float] = {}  # monotonic, after finish_call committed
        hangup_wall: dict[str, float] = {}
        first_seen: dict[str, dict[str, float]] = {s: {} for s in sids}
        poll_times: list[float] = []
        poll_query_ms: list[float] = []
        db_procs = pg_server_procs(pg) if pg is not None else []
        cpu0 = [w.cpu_s() for w in workers]
        db_cpu0 = procs_cpu_s(db_procs)
        self_cpu0 = time.process_time()
        inserting_done = asyncio.Event()

        async def insert() -> None:
            for c in calls:
                await finish_call(db, c)
                hangup[c.call_sid] = time.monotonic()
                hangup_wall[c.call_sid] = time.time()
            inserting_done.set()

        async def poll() -> None:
            remaining = set(sids)
            while remaining:
                q0 = time.monotonic()
                st = await _stages(poll_db, SID_PREFIX)
                now = time.monotonic()
                poll_times.append(now)
                poll_query_ms.append((now - q0) * 1000)
                for sid, stage in st.items():
                    seen = first_seen[sid]
                    if stage not in seen:
                        seen[stage] = now
                    if stage in ("done", "failed"):
                        remaining.discard(sid)
                if now - poll_times[0] > args.timeout:
                    raise TimeoutError(f"{len(remaining)} calls not done after {args.timeout} s")
                await asyncio.sleep(max(0.0, POLL_S - (time.monotonic() - q0)))

        t_start = time.monotonic()
        await asyncio.gather(insert(), poll())
        t_end = max(max(v.values()) for v in first_seen.values())
        cpu1 = [w.cpu_s() for w in workers]
        db_cpu1 = procs_cpu_s(db_procs)
        self_cpu = time.process_time() - self_cpu0

        # rows at the end: outcome, and updated_at of the done step (the worker's clock)
        c = call_details.c
        async with db.session() as conn:
            rows = (
                await conn.execute(
                    sa.select(c.call_sid, c.stage, c.call_type, c.updated_at, c.last_error).where(
                        c.call_sid.like(SID_PREFIX + "%")
                    )
                )
            ).all()
    finally:
        for w in workers:
            w.stop()
        await db.dispose()
        await poll_db.dispose()

    # --- figures ---
    to_analysed, to_done, to_done_col, skipped_analysed = [], [], [], 0
    for s in sids:
        seen = first_seen[s]
        if "done" not in seen:
            continue
        if "analysed" in seen:
            t_an = seen["analysed"]
        else:  # moved past 'analysed' between two polls: the first later stage bounds it
            skipped_analysed += 1
            t_an = min(v for k, v in seen.items() if STAGE_RANK.get(k, 0) >= 1)
        to_analysed.append((t_an - hangup[s]) * 1000)
        to_done.append((seen["done"] - hangup[s]) * 1000)
    for r in rows:
        if r.stage == "done" and r.updated_at is not None:
            ts = r.updated_at
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            to_done_col.append((ts.timestamp() - hangup_wall[r.call_sid]) * 1000)
    first_hangup = min(hangup.values())
    last_hangup = max(hangup.values())
    span = t_end - first_hangup
    gaps = [b - a for a, b in itertools.pairwise(poll_times)]
    worker_cpu_ms = [round((b - a) * 1000, 1) for a, b in zip(cpu0, cpu1, strict=True)]
    db_cpu_ms = sum(v - db_cpu0.get(pid, 0.0) for pid, v in db_cpu1.items()) * 1000
    n = len(sids)
    stages = Counter(r.stage for r in rows)
    warnings = [ln for w in workers for ln in w.log_lines() if ln.strip()]

    def r1(x: float | None) -> float | None:
        return None if x is None else round(x, 1)

    return {
        "db": kind,
        "workers": n_workers,
        "calls": n,
        **warm,
        "figures": {
            "hangup_to_analysed_ms_p50": r1(percentile(to_analysed, 50)),
            "hangup_to_analysed_ms_p99": r1(percentile(to_analysed, 99)),
            "hangup_to_analysed_ms_max": r1(max(to_analysed, default=None)),
            "hangup_to_done_ms_p50": r1(percentile(to_done, 50)),
            "hangup_to_done_ms_p99": r1(percentile(to_done, 99)),
            "hangup_to_done_ms_max": r1(max(to_done, default=None)),
            "hangup_to_done_ms_p50_from_updated_at": r1(percentile(to_done_col, 50)),
            "hangup_to_done_ms_p99_from_updated_at": r1(percentile(to_done_col, 99)),
            "calls_per_second": round(n / span, 1) if span > 0 else None,
            "insert_calls_per_second": round(n / (last_hangup - t_start), 1),
            "insert_s": round(last_hangup - t_start, 2),
            "first_hangup_to_last_done_s": round(span, 2),
            "worker_cpu_ms_per_call": round(sum(worker_cpu_ms) / n, 2),
            "worker_cpu_ms_by_worker": worker_cpu_ms,
            "worker_cpu_share_by_worker": [
                round(x / sum(worker_cpu_ms), 3) if sum(worker_cpu_ms) else None
                for x in worker_cpu_ms
            ],
            "worker_cores_busy_mean": round(sum(worker_cpu_ms) / 1000 / span, 2),
            "db_server_cpu_ms_per_call": round(db_cpu_ms / n, 2) if db_procs else None,
            "bench_process_cpu_ms_per_call": round(self_cpu * 1000 / n, 2),
            "analysed_stage_not_observed": skipped_analysed,
            "poll_interval_ms_mean": r1(sum(gaps) / len(gaps) * 1000 if gaps else None),
            "poll_interval_ms_p99": r1(percentile([g * 1000 for g in gaps], 99)),
            "poll_interval_ms_max": r1(max(gaps) * 1000 if gaps else None),
            "poll_query_ms_p50": r1(percentile(poll_query_ms, 50)),
            "polls": len(poll_times),
            "final_stages": dict(stages),
            "call_types": dict(Counter(r.call_type for r in rows)),
            "calls_failed": stages.get("failed", 0),
            "last_errors": sorted({r.last_error for r in rows if r.last_error})[:5],
            "worker_log_lines": len(warnings),
            "worker_log_tail": warnings[-10:],
        },
    }


# --- driver ------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["db"], r["workers"]): r["figures"] for r in runs}
    keys = [
        "calls_per_second",
        "hangup_to_analysed_ms_p50",
        "hangup_to_analysed_ms_p99",
        "hangup_to_done_ms_p50",
        "hangup_to_done_ms_p99",
        "worker_cpu_ms_per_call",
    ]
    out: dict[str, Any] = {}
    dbs = sorted({r["db"] for r in runs})
    ws = sorted({r["workers"] for r in runs})
    for d in dbs:  # more workers vs fewest, same database
        for w in ws[1:]:
            if (d, ws[0]) in by and (d, w) in by:
                out[f"{d}: {w} vs {ws[0]} workers"] = {
                    k: _ratio(by[(d, w)][k], by[(d, ws[0])][k]) for k in keys
                }
    if "sqlite" in dbs and "postgresql" in dbs:
        for w in ws:
            if ("sqlite", w) in by and ("postgresql", w) in by:
                out[f"{w} worker(s): postgresql vs sqlite"] = {
                    k: _ratio(by[("postgresql", w)][k], by[("sqlite", w)][k]) for k in keys
                }
    return out


def print_table(res: dict[str, Any]) -> None:
    runs = res["runs"]
    rows = [
        ("calls/s (first hang-up -> last done)", "calls_per_second"),
        ("hang-up -> analysed p50 ms", "hangup_to_analysed_ms_p50"),
        ("hang-up -> analysed p99 ms", "hangup_to_analysed_ms_p99"),
        ("hang-up -> done p50 ms", "hangup_to_done_ms_p50"),
        ("hang-up -> done p99 ms", "hangup_to_done_ms_p99"),
        ("  (done p99 from updated_at)", "hangup_to_done_ms_p99_from_updated_at"),
        ("insert (hang-up) calls/s", "insert_calls_per_second"),
        ("worker CPU ms per call", "worker_cpu_ms_per_call"),
        ("worker CPU share per worker", "worker_cpu_share_by_worker"),
        ("worker cores busy (mean)", "worker_cores_busy_mean"),
        ("db server CPU ms per call", "db_server_cpu_ms_per_call"),
        ("bench (insert+poll) CPU ms per call", "bench_process_cpu_ms_per_call"),
        ("poll interval mean / max ms", None),
        ("analysed never observed", "analysed_stage_not_observed"),
        ("failed calls", "calls_failed"),
    ]
    heads = [f"{r['db']} W={r['workers']}" for r in runs]
    p = res["parameters"]
    title = (
        f"pipeline: {p['calls']} calls per run, {res['machine']['nproc']} CPUs "
        f"({res['machine']['cpu_model']})"
    )
    print(title)
    print("-" * len(title))
    w0 = max(len(r[0]) for r in rows)
    print(f"{'':<{w0}}  " + "  ".join(f"{h:>16}" for h in heads))
    for label, key in rows:
        vals = []
        for r in runs:
            f = r["figures"]
            if key is None:
                v = f"{f['poll_interval_ms_mean']} / {f['poll_interval_ms_max']}"
            else:
                v = f.get(key)
                if isinstance(v, list):
                    v = ",".join(str(x) for x in v)
            vals.append(f"{'-' if v is None else v!s:>16}")
        print(f"{label:<{w0}}  " + "  ".join(vals))
    if res["comparison"]:
        print("\nratios")
        for name, ratios in res["comparison"].items():
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))


async def run_all(args: Any, tmp: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    pg = None
    try:
        for kind in args.db:
            for n_workers in args.workers:
                if kind == "sqlite":
                    url = f"sqlite:///{tmp}/bench-{n_workers}.db"
                else:
                    if pg is None:
                        from tests.pg import ThrowawayPostgres

                        pg = await asyncio.to_thread(ThrowawayPostgres().start)
                        log(f"throw-away PostgreSQL on port {pg.port}")
                    url = await pg.create_database_async()
                t0 = time.monotonic()
                runs.append(await run_one(url, kind, n_workers, args, tmp, pg))
                log(f"{kind}, {n_workers} worker(s): run took {time.monotonic() - t0:.1f} s")
    finally:
        if pg is not None:
            await asyncio.to_thread(pg.stop)
    return {
        "bench": "pipeline",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": git_commit(),
        "parameters": {
            "calls": args.calls,
            "workers": args.workers,
            "db": args.db,
            "worker_settings": "defaults: poll_s 1.0 when idle, batch 4, lease 120 s",
            "transcripts": "bakery: 76 % orders (ORDER shape, varied items/names/times), "
            "20 % enquiries, 4 % empty; one live-model usage row per call",
            "analyzer": "offline (pipeline_deps), local pricing table",
        },
        "method": {
            "hangup": "time.monotonic() right after finish_call returned (its transaction "
            "committed); calls inserted back to back from one connection of this process",
            "stage_times": "no per-stage timestamp column exists: this process polls "
            f"SELECT call_sid, stage every {POLL_S * 1000:g} ms (from a second engine) and "
            "takes the completion time of the first poll that saw a stage. Resolution is the "
            "poll interval (poll_interval_ms_*), so every latency is late by 0 .. one "
            "interval (+ the query time). When 'analysed' was never observed (the call moved "
            "on between two polls), the first later stage seen is used (an upper bound).",
            "done_cross_check": "hangup_to_done_ms_*_from_updated_at uses the row's updated_at "
            "(the worker's clock at the done step, before its commit) minus the wall-clock "
            "hang-up time: no polling error, same machine clock",
            "calls_per_second": "N / (first hang-up -> last call first seen done)",
            "worker_cpu": "psutil user+system CPU of the worker processes from just before the "
            "first hang-up to the last done, / N; includes their idle polling",
        },
        "runs": runs,
        "comparison": compare(runs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite and/or postgresql")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    args = ap.parse_args(argv)
    args.workers = [int(x) for x in args.workers.split(",") if x.strip()]
    args.db = [x.strip() for x in args.db.split(",") if x.strip()]
    if args.calls < 1 or not args.workers or min(args.workers) < 1:
        ap.error("--calls and --workers must be >= 1")
    if set(args.db) - {"sqlite", "postgresql"}:
        ap.error("--db takes sqlite and/or postgresql")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        try:
            import uvloop

            res = uvloop.run(run_all(args, tmp))
        except ImportError:  # pragma: no cover
            res = asyncio.run(run_all(args, tmp))
    except (RuntimeError, TimeoutError) as exc:
        log(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(res)
    if args.json:
        write_json(args.json, res)
    return 0 if all(r["figures"]["calls_failed"] == 0 for r in res["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
