"""Load bench of the real bridge: N simulated Exotel calls through `receptionist serve` against
the Gemini Live double, with CPU/RSS sampling, per-frame added latency from the call rows, and an
in-process "floor" for comparison.

    .venv/bin/python bench/bridge_load.py --calls 100 --concurrency 100 \
        [--workers 1] [--turns 2] [--json bench/results/x.json] [--db sqlite|URL]
    .venv/bin/python bench/bridge_load.py --ladder 1,10,100,200 [--resampler fir|soxr-hq] \
        --json bench/results/bridge_latency_<date>.json

Three processes, loopback only: the Gemini Live double (TLS), the server (plus its worker
processes when --workers > 1), and this process (the callers, real-time 8 kHz pacing). See
bench/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    Proc,
    TreeSampler,
    bench_env,
    free_port,
    git_commit,
    machine_info,
    measure_floor,
    measure_resampling,
    percentile,
    serve_argv,
    short_lines,
    write_json,
)

BUDGET = {
    "budget_cpu_ms_per_call_second": 4.5,
    "budget_rss_kb_per_call": 200,
    "budget_p99_added_latency_ms": 20,
}
PIPECAT_REFERENCE = (
    "Pipecat 1.14 (ExotelFrameSerializer + GeminiLiveLLMService) measured earlier on this "
    "machine per /work/shared/DESIGN.md: 23-45 ms CPU per call-second, ~11 MB per call, one "
    "event loop saturating one core at ~50 calls (p99 response 3.5 s, a third of agent audio "
    "lost). Not re-measured in this run."
)
SEND_LAG_WARN_MS = 50.0
#: The bridge's share of caller-perceived response latency (DESIGN.md "Performance budget").
BUDGET_BRIDGE_SHARE_MS = {"p50": 10.0, "p99": 20.0}
SAMPLE_EVERY_S = 0.5
VENV_BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _tail(path: Path, n: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


# --- processes --------------------------------------------------------------------------------


def _wait_ready_file(path: Path, proc: Proc, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file():
            return json.loads(path.read_text())
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{_tail(proc.log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not ready within {timeout_s:g} s:\n{_tail(proc.log_path)}")


def _wait_tls(port: int, ca_file: Path, timeout_s: float) -> None:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:  # noqa: SIM117
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"Gemini Live double does not accept TLS on {port}: {last}")


def _wait_healthz(port: int, proc: Proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/healthz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"server exited at start:\n{_tail(proc.log_path)}")
        with contextlib.suppress(OSError), opener.open(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server /healthz not 200 within {timeout_s:g} s:\n{_tail(proc.log_path)}")


# --- profiling -------------------------------------------------------------------------------


def _start_py_spy(
    pid: int, out: Path, tmp: Path, duration_s: float | None
) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "100",
        "--gil",
        "--nonblocking",
        "--format",
        "raw",
        "-o",
        str(out),
    ]
    if duration_s:
        argv += ["--duration", str(int(duration_s))]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp / "spy.log", "wb"))  # noqa: SIM115
    time.sleep(1.0)
    return proc


def _stop_py_spy(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return summarise_collapsed(out)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    short = "/".join(Path(path).parts[-2:]) if path else where
    return f"{name} ({short})"


def summarise_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample counts per function from py-spy's collapsed stacks."""
    self_c: dict[str, int] = {}
    incl_c: dict[str, int] = {}
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            count = int(n)
            total += count
            frames = [
                _frame_name(f)
                for f in stack.split(";")
                if f and not f.startswith("process ") and not f.startswith("thread ")
            ]
            if not frames:
                continue
            self_c[frames[-1]] = self_c.get(frames[-1], 0) + count
            for fr in set(frames):
                incl_c[fr] = incl_c.get(fr, 0) + count

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(k, round(100.0 * v / total, 1)) for k, v in items] if total else []

    return {
        "samples": total,
        "collapsed_stacks": str(path),
        "top_self_pct": pct(self_c),
        "top_inclusive_pct": pct(incl_c),
    }


# --- database --------------------------------------------------------------------------------


async def _read_rows(db_url: str, sids: set[str], wait_s: float) -> list[dict[str, Any]]:
    """Call rows of this run, waiting (up to wait_s) until none is still in progress."""
    from receptionist.store.calls import list_calls
    from receptionist.store.db import Database

    db = Database(db_url)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            rows = await list_calls(db, limit=len(sids) + 10_000)
            mine = [r for r in rows if r["call_sid"] in sids]
            pending = [r for r in mine if r["status"] == "in_progress"]
            if (len(mine) >= len(sids) and not pending) or time.monotonic() > deadline:
                return mine
            await asyncio.sleep(0.25)
    finally:
        await db.dispose()


def _dt(v: Any) -> datetime:
    d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _stats_of(row: dict[str, Any]) -> dict[str, Any]:
    stats = row.get("stats") or {}
    if isinstance(stats, str | bytes):
        stats = json.loads(stats)
    return stats if isinstance(stats, dict) else {}


# --- the run ----------------------------------------------------------------------------------


async def _calls(
    url: str, n: int, concurrency: int, turns: int, max_call_s: float, spread_s: float = 0.0
) -> list[Any]:
    from receptionist.sim.caller import CallerScript, CallOptions, place_call, run_load

    script = CallerScript(utterances=[h for h, _ in short_lines(turns)])

    def make_opts(i: int) -> CallOptions:
        return CallOptions(url=url, realtime=True, sample_rate=8000, max_call_s=max_call_s)

    if spread_s <= 0 or concurrency < n:
        return await run_load(make_opts, script, calls=n, concurrency=concurrency)

    # Starts spread evenly over spread_s: calls' 100 ms frames then fall at different phases,
    # as real calls' do, instead of every call sending (and every reply starting) in the same
    # few milliseconds, which is the load generator's artefact, not a phone network's.
    async def one(i: int) -> Any:
        await asyncio.sleep(i * spread_s / n)
        return await place_call(make_opts(i), script)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _sample_while(
    task: asyncio.Task[Any], samplers: list[TreeSampler], every_s: float
) -> None:
    while not task.done():
        await asyncio.wait([task], timeout=every_s)
        for s in samplers:
            s.sample()


def split_legs(
    results: list[Any], sessions: list[dict[str, Any]], answer_delay_ms: float, wait_ms: float
) -> dict[str, Any]:
    """Where the bridge's share goes, caller -> double and double -> caller, from the callers'
    and the double's timestamps (one monotonic clock: same machine).

    The double cannot tell which call a session belongs to, so the legs are matched by rank:
    the i-th earliest end of a caller turn (+ the answer delay) against the i-th earliest end of
    turn the double detected, and the i-th earliest first reply audio the double sent (+
    Exotel's first-chunk wait) against the i-th earliest the callers received. Exact for one
    call; for many, a distribution of the legs (ranks mix calls whose turns end together).
    """
    ends = sorted(
        r.start_sent_at + t / 1000.0
        for r in results
        if r.start_sent_at is not None
        for t in r.turn_end_ms
    )
    heard = sorted(t for s in sessions for t in s.get("turn_ended_at", []))
    replies = sorted(
        r.start_sent_at + t / 1000.0
        for r in results
        if r.start_sent_at is not None
        for t in r.reply_start_ms
    )
    sent = sorted(
        t
        for s in sessions
        for t, kind in zip(
            s.get("reply_first_audio_at", []), s.get("reply_kinds", []), strict=False
        )
        if t is not None and kind in ("turn", "fallback")
    )
    inbound = [(d - c) * 1000.0 - answer_delay_ms for c, d in zip(ends, heard, strict=False)]
    outbound = [(c - d) * 1000.0 - wait_ms for d, c in zip(sent, replies, strict=False)]
    out: dict[str, Any] = {
        "legs_matched_turns": min(len(ends), len(heard)),
        "legs_matched_replies": min(len(sent), len(replies)),
    }
    for name, xs in (("inbound", inbound), ("outbound", outbound)):
        out[f"leg_{name}_ms_p50"] = _r(percentile(xs, 50), 1)
        out[f"leg_{name}_ms_p99"] = _r(percentile(xs, 99), 1)
        out[f"leg_{name}_ms_max"] = _r(max(xs) if xs else None, 1)
    return out


def _greeting_heard_ms(res: Any) -> float:
    """Agent audio of the call's greeting segment, from the caller's events."""
    in_greeting = False
    for ev in res.events:
        if ev.kind == "agent_audio_start":
            in_greeting = ev.text == "greeting"
        elif ev.kind == "agent_audio_end" and in_greeting:
            with contextlib.suppress(ValueError, IndexError):
                return float(ev.text.split()[0])
            return 0.0
    return 0.0


def exotel_first_chunk_wait_ms(double_chunk_ms: int, sample_rate: int = 8000) -> float:
    """How long a bridge that keeps Exotel's chunk rule must wait, after the double's first
    agent audio, before it can send its first media frame: the double paces `double_chunk_ms`
    chunks in real time and a frame needs `OutboundChunker.min_bytes` (100 ms of audio by
    default, `EXOTEL_MIN_CHUNK_MS`), so the frame is complete when the chunk that fills it
    arrives. Not the bridge's doing (the rule is Exotel's), so the bridge's share leaves it out."""
    from receptionist.telephony.exotel import OutboundChunker

    need_ms = OutboundChunker(sample_rate).min_bytes * 1000.0 / (2 * sample_rate)
    chunks = math.ceil(need_ms / double_chunk_ms - 1e-9)
    return float((chunks - 1) * double_chunk_ms)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


async def run_bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from receptionist.bridge.latency import LatencyHistogram

    started_at = datetime.now(UTC)
    floor: dict[str, Any] = {}
    resampling: dict[str, Any] = {}
    if args.floor:  # before any other process of ours runs, so nothing competes for the CPU
        floor = measure_floor(repeats=7)
        resampling = measure_resampling(args.resampler)
    ca_file = tmp / "ca.pem"
    ready = tmp / "double.json"
    double_stats = tmp / "double-stats.json"
    env = bench_env()
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["RECEPTIONIST_RESAMPLER"] = args.resampler
    load_before = os.getloadavg()

    # 1. the Gemini Live double
    double = Proc(
        "double",
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "_common.py"),
            "double",
            "--ready-file",
            str(ready),
            "--ca-out",
            str(ca_file),
            "--api-key",
            "bench-key",
            "--turns",
            str(args.turns),
            "--stats-out",
            str(double_stats),
            "--chunk-ms",
            str(args.double_chunk_ms),
            "--eot-ms",
            str(args.eot_ms),
        ],
        env,
        tmp / "double.log",
    )
    procs: list[Proc] = [double]
    server: Proc | None = None
    try:
        info = _wait_ready_file(ready, double, 30)
        gport = int(info["port"])
        answer_delay_ms = float(info["answer_delay_ms"])
        _wait_tls(gport, ca_file, 15)
        log(f"Gemini Live double pid {double.pid} on https://127.0.0.1:{gport}")

        # 2. the server
        db_url = f"sqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db
        port = free_port()
        senv = dict(env)
        senv.update(
            DATABASE_URL=db_url,
            GEMINI_API_KEY="bench-key",
            GEMINI_BASE_URL=f"https://127.0.0.1:{gport}",
            GEMINI_CA_FILE=str(ca_file),
            TENANTS_DIR=str(_recording_tenants(tmp) if args.record else REPO_ROOT / "tenants"),
            RECORDINGS_SPOOL_DIR=str(tmp / "recordings"),
            SPOOL_DIR=str(tmp / "spool"),
            LOG_LEVEL="WARNING",
            # the bench finds the limit itself: no admission control refusing calls on the way
            MAX_CALLS_PER_PROCESS="0",
            ADMISSION_MAX_LOOP_LAG_MS="0",
            # The bridge alone: post-call work has its own bench (bench/pipeline.py).
            RUN_WORKER="false",
            WORKERS=str(args.workers),
            HOST="127.0.0.1",
            PORT=str(port),
        )
        server = Proc(
            "server",
            serve_argv(port),
            senv,
            tmp / "server.log",
        )
        procs.append(server)
        _wait_healthz(port, server, 60)
        if args.workers > 1:  # all workers up (each imports the app)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                kids = psutil.Process(server.pid).children(recursive=True)
                if len(kids) >= args.workers:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)
        url = f"ws://127.0.0.1:{port}/exotel/bakery"
        log(f"server pid {server.pid} on {url} (workers={args.workers}, db={args.db})")

        srv = TreeSampler(server.pid)
        dbl = TreeSampler(double.pid)
        TreeSampler(os.getpid())
        rss_cold = srv.rss_now()

        # 3a. warm-up: lazy imports and first-call allocations are not per-call costs
        warm_sids: set[str] = set()
        if args.warmup:
            log(f"warm-up: {args.warmup} call(s)")
            warm = await _calls(url, args.warmup, args.warmup, args.turns, args.max_call_s)
            warm_sids = {r.call_sid for r in warm}
            bad = [r.error for r in warm if not r.ok]
            if bad:
                log(f"warm-up call(s) failed: {bad}")
        await asyncio.sleep(1.0)
        idle = []
        for _ in range(4):
            idle.append(srv.rss_now())
            await asyncio.sleep(0.25)
        rss_idle = int(sum(idle) / len(idle))

        # 3b. the measured run
        log(f"run: {args.calls} calls, concurrency {args.concurrency}, {args.turns} turns each")
        for s in (srv, dbl):
            s.start()
        spy: subprocess.Popen[bytes] | None = None
        if args.py_spy:
            spy = _start_py_spy(server.pid, args.py_spy, tmp, args.py_spy_duration)
        my_cpu0 = psutil.Process().cpu_times()
        t0 = time.monotonic()
        task = asyncio.create_task(
            _calls(url, args.calls, args.concurrency, args.turns, args.max_call_s, args.spread_s)
        )
        await _sample_while(task, [srv, dbl], SAMPLE_EVERY_S)
        results = task.result()
        wall_s = time.monotonic() - t0
        for s in (srv, dbl):
            s.sample()
        my_cpu1 = psutil.Process().cpu_times()
        load_after = os.getloadavg()
        caller_cpu_s = (my_cpu1.user + my_cpu1.system) - (my_cpu0.user + my_cpu0.system)
        profile = _stop_py_spy(spy, args.py_spy) if spy is not None else None
        log(f"run done in {wall_s:.1f} s; reading call rows")

        # 5. call rows
        sids = {r.call_sid for r in results}
        rows = await _read_rows(db_url, sids, 30)
        srv_exit = server.stop()
        server_log_tail = _tail(server.log_path, 40)
        double.stop()
        dstats: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            dstats = json.loads(double_stats.read_text())
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.stop()

    # --- figures ---------------------------------------------------------------------------
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    reasons: dict[str, int] = {}
    for r in failed:
        key = (r.error or "?")[:160]
        reasons[key] = reasons.get(key, 0) + 1
    call_seconds = sum(r.duration_s for r in results)
    srv_cpu_ms = srv.cpu_s * 1000.0
    dbl_cpu_ms = dbl.cpu_s * 1000.0
    bridge_cpu = srv_cpu_ms / call_seconds if call_seconds else None

    h_in, h_out = LatencyHistogram(), LatencyHistogram()
    frames_in = bad_frames = frames_out = 0
    bad_kinds: dict[str, int] = {}
    statuses: dict[str, int] = {}
    server_greeting = []
    for row in rows:
        statuses[f"{row['status']}:{row.get('end_reason')}"] = (
            statuses.get(f"{row['status']}:{row.get('end_reason')}", 0) + 1
        )
        st = _stats_of(row)
        if st.get("latency_in"):
            h_in.merge(LatencyHistogram.from_json(st["latency_in"]))
        if st.get("latency_out"):
            h_out.merge(LatencyHistogram.from_json(st["latency_out"]))
        frames_in += int(st.get("frames_in") or 0)
        frames_out += int(st.get("frames_out") or 0)
        for k, v in (st.get("bad_frames") or {}).items():
            bad_kinds[k] = bad_kinds.get(k, 0) + int(v)
            bad_frames += int(v)
        if st.get("greeting_ms") is not None:
            server_greeting.append(float(st["greeting_ms"]))
    both = LatencyHistogram.merged([h_in, h_out])
    # created_at - started_at: when the row was written relative to the session start
    # (store.calls sets created_at in Python before the INSERT). Seconds here mean the row was
    # NOT created at start (create_call failed, e.g. "database is locked") and finish_call
    # inserted it at hang-up.
    insert_delay = []
    event_kinds: dict[str, int] = {}
    for row in rows:
        with contextlib.suppress(Exception):
            delta = _dt(row.get("created_at")) - _dt(row.get("started_at"))
            insert_delay.append(delta.total_seconds() * 1000.0)
        for ev in row.get("events") or []:
            kind = ev.get("kind", "?") if isinstance(ev, dict) else "?"
            event_kinds[kind] = event_kinds.get(kind, 0) + 1
    row_sids = {r["call_sid"] for r in rows}
    media_sent_rowed = sum(r.media_sent for r in results if r.call_sid in row_sids)
    media_sent = sum(r.media_sent for r in results)
    media_received = sum(r.media_received for r in results)

    greet = [r.greeting_ms for r in results if r.greeting_ms is not None]
    resp = [x for r in results for x in r.response_ms]
    chunk_wait_ms = exotel_first_chunk_wait_ms(args.double_chunk_ms)
    over = [x - answer_delay_ms for x in resp]
    share = [x - chunk_wait_ms for x in over]
    per_call = [
        {
            "call_sid": r.call_sid,
            "ok": r.ok,
            "greeting_ms": r.greeting_ms,
            "response_ms": r.response_ms,
            "response_over_answer_delay_ms": [round(x - answer_delay_ms, 1) for x in r.response_ms],
            "turn_end_ms": r.turn_end_ms,
            "reply_start_ms": r.reply_start_ms,
        }
        for r in results
    ]
    max_lag = max((r.max_send_lag_ms for r in results), default=0.0)
    agent_sent_ms = sum(s["agent_audio_ms"] for s in dstats.get("sessions", []))
    # warm-up sessions are in the double's list too: they are the first ones
    warm_sessions = dstats.get("sessions", [])[: len(warm_sids)]
    agent_sent_ms -= sum(s["agent_audio_ms"] for s in warm_sessions)
    agent_recv_ms = sum(r.agent_audio_ms for r in results)
    # A greeting played from the server's cache reaches the caller without the double sending
    # it: compare replies only (the double's non-greeting audio vs what the callers heard
    # outside their greeting segment).
    measured = dstats.get("sessions", [])[len(warm_sids) :]
    replies_sent_ms = sum(s["agent_audio_ms"] - s.get("greeting_audio_ms", 0.0) for s in measured)
    greeting_recv_ms = sum(_greeting_heard_ms(r) for r in results)
    replies_recv_ms = agent_recv_ms - greeting_recv_ms
    legs = split_legs(
        results, dstats.get("sessions", [])[len(warm_sids) :], answer_delay_ms, chunk_wait_ms
    )

    figures: dict[str, Any] = {
        "calls_ok": len(ok),
        "calls_failed": len(failed),
        "failure_reasons": reasons,
        "call_rows": len(rows),
        "call_row_status": statuses,
        "wall_s": round(wall_s, 2),
        "call_seconds": round(call_seconds, 1),
        "mean_call_s": round(call_seconds / len(results), 2) if results else None,
        # CPU
        "server_cpu_ms": round(srv_cpu_ms, 1),
        "bridge_cpu_ms_per_call_second": _r(bridge_cpu, 3),
        "server_cpu_cores_busy_mean": _r(srv.cpu_s / wall_s if wall_s else None, 3),
        "server_pids": sorted(srv.pids_seen),
        "server_cpu_ms_by_thread": srv.thread_cpu_ms(),
        "server_cores_busy_timeline": srv.cores_busy_timeline(),
        "server_cores_busy_max": max(srv.cores_busy_timeline(), default=None),
        "double_cpu_ms": round(dbl_cpu_ms, 1),
        "double_cores_busy_timeline": dbl.cores_busy_timeline(),
        "double_cpu_ms_per_call_second": _r(dbl_cpu_ms / call_seconds if call_seconds else None, 3),
        "caller_cpu_ms": round(caller_cpu_s * 1000.0, 1),
        "caller_cpu_ms_per_call_second": _r(
            caller_cpu_s * 1000.0 / call_seconds if call_seconds else None, 3
        ),
        # memory
        "rss_cold_kb": rss_cold // 1024,
        "rss_idle_kb": rss_idle // 1024,
        "rss_peak_kb": srv.peak_rss // 1024,
        "rss_kb_per_call": _r((srv.peak_rss - rss_idle) / 1024 / args.concurrency, 1),
        "rss_kb_per_call_from_cold": _r((srv.peak_rss - rss_cold) / 1024 / args.concurrency, 1),
        # added latency inside the bridge (per frame, from the call rows)
        "added_latency_in_ms_p50": _r(h_in.percentile_ms(50), 3),
        "added_latency_in_ms_p99": _r(h_in.percentile_ms(99), 3),
        "added_latency_in_ms_max": _r(h_in.max_s * 1000.0, 3),
        "added_latency_in_ms_mean": _r(h_in.sum_s * 1000.0 / h_in.count if h_in.count else None, 3),
        "added_latency_out_ms_p50": _r(h_out.percentile_ms(50), 3),
        "added_latency_out_ms_p99": _r(h_out.percentile_ms(99), 3),
        "added_latency_out_ms_max": _r(h_out.max_s * 1000.0, 3),
        "added_latency_out_ms_mean": _r(
            h_out.sum_s * 1000.0 / h_out.count if h_out.count else None, 3
        ),
        "added_latency_ms_p50": _r(both.percentile_ms(50), 3),
        "added_latency_ms_p99": _r(both.percentile_ms(99), 3),
        "latency_frames_in": h_in.count,
        "latency_frames_out": h_out.count,
        # caller side
        "first_greeting_ms_p50": _r(percentile(greet, 50), 1),
        "first_greeting_ms_p99": _r(percentile(greet, 99), 1),
        "first_greeting_ms_max": _r(max(greet) if greet else None, 1),
        "server_greeting_ms_p99": _r(percentile(server_greeting, 99), 1),
        "first_greeting_ms_deciles": [
            _r(percentile(greet, q), 0) for q in (10, 20, 30, 40, 50, 60, 70, 80, 90, 99, 100)
        ],
        "row_created_after_start_ms_p50": _r(percentile(insert_delay, 50), 1),
        "row_created_after_start_ms_p99": _r(percentile(insert_delay, 99), 1),
        "row_created_after_start_ms_max": _r(max(insert_delay) if insert_delay else None, 1),
        "rows_created_late_over_1s": sum(1 for d in insert_delay if d > 1000.0),
        "call_event_kinds": event_kinds,
        "response_ms_p50": _r(percentile(resp, 50), 1),
        "response_ms_p99": _r(percentile(resp, 99), 1),
        "response_ms_max": _r(max(resp) if resp else None, 1),
        "responses": len(resp),
        # what the caller waits beyond the double's own answer delay (see bench/README.md)
        "answer_delay_ms": answer_delay_ms,
        "double_chunk_ms": args.double_chunk_ms,
        "exotel_first_chunk_wait_ms": chunk_wait_ms,
        "response_over_answer_delay_ms_p50": _r(percentile(over, 50), 1),
        "response_over_answer_delay_ms_p99": _r(percentile(over, 99), 1),
        "response_over_answer_delay_ms_max": _r(max(over) if over else None, 1),
        "response_over_answer_delay_ms_min": _r(min(over) if over else None, 1),
        "bridge_share_ms_p50": _r(percentile(share, 50), 1),
        "bridge_share_ms_p99": _r(percentile(share, 99), 1),
        "bridge_share_ms_max": _r(max(share) if share else None, 1),
        "greeting_ms_p50": _r(percentile(greet, 50), 1),
        "greeting_ms_p99": _r(percentile(greet, 99), 1),
        **legs,
        "turn_timeouts": sum(r.turn_timeouts for r in results),
        "unanswered_turns": sum(r.unanswered_turns for r in results),
        "max_send_lag_ms": round(max_lag, 1),
        "caller_overloaded": max_lag > SEND_LAG_WARN_MS,
        # frames
        "media_sent_by_caller": media_sent,
        "frames_in_counted_by_server": frames_in,
        "bad_frames": bad_frames,
        "bad_frame_kinds": bad_kinds,
        "dropped_frames": media_sent_rowed - frames_in + bad_frames,
        "frames_out_by_server": frames_out,
        "media_received_by_caller": media_received,
        "agent_audio_sent_by_double_ms": round(agent_sent_ms, 1) if dstats else None,
        "agent_audio_received_by_caller_ms": round(agent_recv_ms, 1),
        "agent_audio_lost_ms": round(replies_sent_ms - replies_recv_ms, 1) if dstats else None,
        "reply_audio_sent_by_double_ms": round(replies_sent_ms, 1) if dstats else None,
        "reply_audio_received_by_caller_ms": round(replies_recv_ms, 1),
        "greeting_audio_received_by_caller_ms": round(greeting_recv_ms, 1),
        "double_session_errors": [s["error"] for s in dstats.get("sessions", []) if s["error"]],
        "server_exit_code": srv_exit,
    }
    figures["load_avg_1_5_15_before"] = [round(x, 2) for x in load_before]
    figures["load_avg_1_5_15_after"] = [round(x, 2) for x in load_after]
    if floor:
        figures.update(floor)
        f = floor["floor_cpu_ms_per_call_second"]
        figures["ratio_to_floor"] = _r(bridge_cpu / f if bridge_cpu and f else None, 2)
    return {
        "bench": "bridge_load",
        # The headline figures at the top level, under the names the issue asks for.
        "calls": args.calls,
        "concurrency": args.concurrency,
        **{k: figures.get(k) for k in HEADLINE},
        "date": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git_commit": git_commit(),
        "parameters": {
            "calls": args.calls,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "turns": args.turns,
            "db": "sqlite (temp file)" if args.db == "sqlite" else "url (redacted)",
            "warmup_calls": args.warmup,
            "tenant": "bakery",
            "sample_rate": 8000,
            "pacing": "realtime",
            "caller_lines": [h for h, _ in short_lines(args.turns)],
            "double_replies": [r for _, r in short_lines(args.turns)],
            "sample_every_s": SAMPLE_EVERY_S,
            "resampler": args.resampler,
            "double_chunk_ms": args.double_chunk_ms,
            "double_end_of_turn_silence_ms": args.eot_ms,
            "caller_frame_ms": 100,
            "spread_s": args.spread_s,
            "recording": args.record,
        },
        "figures": figures,
        "per_call": per_call,
        **({"resampling": resampling} if resampling else {}),
        **BUDGET,
        "budget_bridge_share_ms": BUDGET_BRIDGE_SHARE_MS,
        "pipecat_reference": PIPECAT_REFERENCE,
        "server_log_tail": server_log_tail.splitlines()[-40:],
        **({"profile": profile} if profile else {}),
    }


HEADLINE = (
    "bridge_cpu_ms_per_call_second",
    "floor_cpu_ms_per_call_second",
    "ratio_to_floor",
    "added_latency_ms_p50",
    "added_latency_ms_p99",
    "first_greeting_ms_p99",
    "dropped_frames",
    "rss_kb_per_call",
    "response_over_answer_delay_ms_p50",
    "response_over_answer_delay_ms_p99",
    "bridge_share_ms_p50",
    "bridge_share_ms_p99",
    "greeting_ms_p50",
    "greeting_ms_p99",
)


# --- output ------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    return str(v)


def print_table(res: dict[str, Any]) -> None:
    f = res["figures"]
    p = res["parameters"]
    rows = [
        ("calls ok / failed", f"{f['calls_ok']} / {f['calls_failed']}", ""),
        ("wall / call-seconds", f"{_fmt(f['wall_s'])} s / {_fmt(f['call_seconds'])} s", ""),
        (
            "bridge CPU ms per call-second",
            _fmt(f["bridge_cpu_ms_per_call_second"]),
            f"budget {res['budget_cpu_ms_per_call_second']}, Pipecat 23-45",
        ),
        (
            "  floor (in + out)",
            _fmt(f.get("floor_cpu_ms_per_call_second")),
            f"in {_fmt(f.get('floor_in_cpu_ms_per_call_second'))}, "
            f"out {_fmt(f.get('floor_out_cpu_ms_per_call_second'))}",
        ),
        ("  ratio to floor", _fmt(f.get("ratio_to_floor")), "budget <= 2x the design's floor"),
        ("  server cores busy (mean)", _fmt(f["server_cpu_cores_busy_mean"]), ""),
        ("  server cores busy (max 0.5 s)", _fmt(f["server_cores_busy_max"]), ""),
        ("double CPU ms per call-second", _fmt(f["double_cpu_ms_per_call_second"]), ""),
        ("caller CPU ms per call-second", _fmt(f["caller_cpu_ms_per_call_second"]), ""),
        (
            "RSS KB per call",
            _fmt(f["rss_kb_per_call"]),
            f"budget {res['budget_rss_kb_per_call']}, Pipecat ~11000; idle {f['rss_idle_kb']} KB, "
            f"peak {f['rss_peak_kb']} KB",
        ),
        (
            "added latency in  p50 / p99 ms",
            f"{_fmt(f['added_latency_in_ms_p50'])} / {_fmt(f['added_latency_in_ms_p99'])}",
            f"max {_fmt(f['added_latency_in_ms_max'])}",
        ),
        (
            "added latency out p50 / p99 ms",
            f"{_fmt(f['added_latency_out_ms_p50'])} / {_fmt(f['added_latency_out_ms_p99'])}",
            f"max {_fmt(f['added_latency_out_ms_max'])}",
        ),
        (
            "added latency all p50 / p99 ms",
            f"{_fmt(f['added_latency_ms_p50'])} / {_fmt(f['added_latency_ms_p99'])}",
            f"budget p99 {res['budget_p99_added_latency_ms']}",
        ),
        (
            "first greeting p50 / p99 ms",
            f"{_fmt(f['first_greeting_ms_p50'])} / {_fmt(f['first_greeting_ms_p99'])}",
            "start sent -> first agent audio",
        ),
        (
            "response p50 / p99 ms",
            f"{_fmt(f['response_ms_p50'])} / {_fmt(f['response_ms_p99'])}",
            f"last speech frame sent -> first agent frame; incl. the double's "
            f"{_fmt(f['answer_delay_ms'])} ms answer delay",
        ),
        (
            "  minus the answer delay p50 / p99",
            f"{_fmt(f['response_over_answer_delay_ms_p50'])} / "
            f"{_fmt(f['response_over_answer_delay_ms_p99'])}",
            f"incl. {_fmt(f['exotel_first_chunk_wait_ms'])} ms for Exotel's minimum first "
            f"chunk ({f['double_chunk_ms']} ms double chunks)",
        ),
        (
            "  bridge share p50 / p99 ms",
            f"{_fmt(f['bridge_share_ms_p50'])} / {_fmt(f['bridge_share_ms_p99'])}",
            f"budget {BUDGET_BRIDGE_SHARE_MS['p50']:g} / {BUDGET_BRIDGE_SHARE_MS['p99']:g}; "
            f"max {_fmt(f['bridge_share_ms_max'])}",
        ),
        (
            "  legs: in / out p50 ms",
            f"{_fmt(f.get('leg_inbound_ms_p50'))} / {_fmt(f.get('leg_outbound_ms_p50'))}",
            f"p99 {_fmt(f.get('leg_inbound_ms_p99'))} / {_fmt(f.get('leg_outbound_ms_p99'))} "
            "(caller -> double end of turn, double reply -> caller; rank-matched)",
        ),
        (
            "dropped frames (in)",
            _fmt(f["dropped_frames"]),
            f"sent {f['media_sent_by_caller']}, counted {f['frames_in_counted_by_server']}, "
            f"bad {f['bad_frames']}",
        ),
        (
            "agent audio lost ms (replies)",
            _fmt(f["agent_audio_lost_ms"]),
            f"double sent {_fmt(f['reply_audio_sent_by_double_ms'])}, "
            f"caller got {_fmt(f['reply_audio_received_by_caller_ms'])} (+ greetings "
            f"{_fmt(f['greeting_audio_received_by_caller_ms'])})",
        ),
        (
            "caller max send lag ms",
            _fmt(f["max_send_lag_ms"]),
            "UNRELIABLE (caller overloaded)" if f["caller_overloaded"] else "ok (< 50)",
        ),
    ]
    title = (
        f"bridge_load: {p['calls']} calls, concurrency {p['concurrency']}, workers "
        f"{p['workers']}, {p['turns']} turns, {res['machine']['nproc']} CPUs "
        f"({res['machine']['cpu_model']})"
    )
    print(title)
    print("-" * len(title))
    w = max(len(r[0]) for r in rows)
    for name, val, note in rows:
        print(f"{name:<{w}}  {val:>18}  {note}")
    if f["failure_reasons"]:
        print("failures:")
        for reason, n in f["failure_reasons"].items():
            print(f"  {n} x {reason}")
    if f["caller_overloaded"]:
        print(
            f"WARNING: caller max send lag {f['max_send_lag_ms']} ms > {SEND_LAG_WARN_MS:g} ms: "
            "the load generator itself was overloaded; latency figures are unreliable."
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--turns", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a database URL")
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up calls before measuring (default: --workers)",
    )
    ap.add_argument("--max-call-s", type=float, default=120.0)
    ap.add_argument("--timeout", type=float, default=900.0, help="overall limit, seconds")
    ap.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="record the server with py-spy during the run: collapsed stacks to "
        "this path (a .svg flame graph beside it); CPU figures are then perturbed",
    )
    ap.add_argument(
        "--py-spy-duration",
        type=float,
        default=None,
        help="profile only the first S seconds of the run (the call-start burst)",
    )
    ap.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the in-process floor measurement",
    )
    ap.add_argument(
        "--resampler",
        choices=("fir", "soxr-hq"),
        default=os.environ.get("RECEPTIONIST_RESAMPLER", "fir"),
        help="the server's streaming resampler (RECEPTIONIST_RESAMPLER): 'fir' (ours, "
        "default) or 'soxr-hq' (the previous one, for before/after runs)",
    )
    ap.add_argument(
        "--double-chunk-ms",
        type=int,
        default=40,
        help="agent audio chunk of the Gemini Live double (real-time paced)",
    )
    ap.add_argument("--eot-ms", type=int, default=500, help="the double's end-of-turn silence")
    ap.add_argument(
        "--spread-s",
        type=float,
        default=0.0,
        help="spread the measured calls' starts evenly over S seconds (default 0: all at once, "
        "every call's frames in phase: the worst case)",
    )
    ap.add_argument(
        "--ladder",
        default="",
        help="comma-separated concurrencies, e.g. 1,10,100,200: one run per level (calls = "
        "concurrency, fresh server and double each), one JSON with all levels",
    )
    ap.add_argument(
        "--wait-load",
        type=float,
        default=None,
        help="before each run wait (at most --wait-load-s) until the 1-minute load average of "
        "the machine is below this; the load is recorded in the JSON either way",
    )
    ap.add_argument("--wait-load-s", type=float, default=180.0)
    ap.add_argument(
        "--record",
        action="store_true",
        help="every tenant records its calls ([recording] enabled): the bridge's tape costs",
    )
    args = ap.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.workers
    if min(args.calls, args.concurrency, args.workers, args.turns) < 1:
        ap.error("--calls, --concurrency, --workers and --turns must be >= 1")
    if args.double_chunk_ms < 1 or args.eot_ms < 0:
        ap.error("--double-chunk-ms must be >= 1 and --eot-ms >= 0")
    try:
        ladder = [int(x) for x in args.ladder.split(",") if x.strip()]
    except ValueError:
        ap.error("--ladder takes comma-separated integers")
    if any(c < 1 for c in ladder):
        ap.error("--ladder levels must be >= 1")
    # this process measures the floor and the resampler with the same implementation
    os.environ["RECEPTIONIST_RESAMPLER"] = args.resampler
    if not ladder:
        res = _run_one(args)
        if res is None:
            return 2
        print_table(res)
        if args.json:
            write_json(args.json, res)
        return 0 if res["figures"]["calls_failed"] == 0 else 1

    levels: list[dict[str, Any]] = []
    for i, c in enumerate(ladder):
        step = argparse.Namespace(**vars(args))
        step.calls = step.concurrency = c
        step.floor = args.floor and i == 0  # the floor does not depend on the level
        res = _run_one(step)
        if res is None:
            return 2
        print_table(res)
        levels.append(res)
    out = ladder_result(args, levels)
    print_ladder(out)
    if args.json:
        write_json(args.json, out)
    return 0 if all(r["figures"]["calls_failed"] == 0 for r in levels) else 1


def _wait_for_quiet(limit: float, within_s: float) -> float:
    deadline = time.monotonic() + within_s
    load = os.getloadavg()[0]
    while load > limit and time.monotonic() < deadline:
        log(f"load average {load:.2f} > {limit:g}: waiting")
        time.sleep(10)
        load = os.getloadavg()[0]
    return load


def _run_one(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.wait_load is not None:
        _wait_for_quiet(args.wait_load, args.wait_load_s)
    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))

    async def go() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run_bench(args, tmp)

    try:
        try:
            import uvloop

            return uvloop.run(go())
        except ImportError:  # pragma: no cover
            return asyncio.run(go())
    except TimeoutError:
        log(f"overall timeout ({args.timeout:g} s) reached; processes stopped")
        return None
    except RuntimeError as exc:
        log(f"error: {exc}")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LADDER_KEYS = (
    "calls_ok",
    "calls_failed",
    "responses",
    "response_ms_p50",
    "response_ms_p99",
    "response_over_answer_delay_ms_p50",
    "response_over_answer_delay_ms_p99",
    "response_over_answer_delay_ms_max",
    "bridge_share_ms_p50",
    "bridge_share_ms_p99",
    "bridge_share_ms_max",
    "leg_inbound_ms_p50",
    "leg_inbound_ms_p99",
    "leg_outbound_ms_p50",
    "leg_outbound_ms_p99",
    "greeting_ms_p50",
    "greeting_ms_p99",
    "first_greeting_ms_max",
    "added_latency_ms_p50",
    "added_latency_ms_p99",
    "bridge_cpu_ms_per_call_second",
    "rss_kb_per_call",
    "dropped_frames",
    "agent_audio_lost_ms",
    "turn_timeouts",
    "max_send_lag_ms",
    "caller_overloaded",
    "load_avg_1_5_15_before",
    "load_avg_1_5_15_after",
)


def _recording_tenants(tmp: Path) -> Path:
    """The example tenants, each recording its calls (the tapes are left in tmp: no worker)."""
    root = tmp / "tenants"
    shutil.copytree(REPO_ROOT / "tenants", root, ignore=shutil.ignore_patterns("README.md"))
    for toml in root.glob("*/tenant.toml"):
        toml.write_text(toml.read_text() + "\n[recording]\nenabled = true\n")
    return root


def ladder_result(args: argparse.Namespace, levels: list[dict[str, Any]]) -> dict[str, Any]:
    first = levels[0]
    return {
        "bench": "bridge_load_ladder",
        "date": first["date"],
        "machine": first["machine"],
        "git_commit": first["git_commit"],
        "resampler": args.resampler,
        "ladder": [r["concurrency"] for r in levels],
        "answer_delay_ms": first["figures"]["answer_delay_ms"],
        "exotel_first_chunk_wait_ms": first["figures"]["exotel_first_chunk_wait_ms"],
        "budget_bridge_share_ms": BUDGET_BRIDGE_SHARE_MS,
        "summary": [
            {"concurrency": r["concurrency"], **{k: r["figures"].get(k) for k in LADDER_KEYS}}
            for r in levels
        ],
        **({"resampling": first["resampling"]} if "resampling" in first else {}),
        "floor": {k: v for k, v in first["figures"].items() if k.startswith("floor_")},
        "levels": levels,
    }


def print_ladder(out: dict[str, Any]) -> None:
    cols = [
        ("calls", "concurrency"),
        ("ok", "calls_ok"),
        ("resp p50", "response_ms_p50"),
        ("resp p99", "response_ms_p99"),
        ("-answer p50", "response_over_answer_delay_ms_p50"),
        ("-answer p99", "response_over_answer_delay_ms_p99"),
        ("share p50", "bridge_share_ms_p50"),
        ("share p99", "bridge_share_ms_p99"),
        ("greet p50", "greeting_ms_p50"),
        ("greet p99", "greeting_ms_p99"),
        ("cpu ms/cs", "bridge_cpu_ms_per_call_second"),
        ("load", "load_avg_1_5_15_after"),
    ]
    print(
        f"ladder ({out['resampler']}): answer delay {out['answer_delay_ms']:g} ms, Exotel first "
        f"chunk wait {out['exotel_first_chunk_wait_ms']:g} ms"
    )
    print("  ".join(f"{h:>11}" for h, _ in cols))
    for row in out["summary"]:
        vals = []
        for _, k in cols:
            v = row.get(k)
            vals.append(_fmt(v[0] if isinstance(v, list) else v))
        print("  ".join(f"{v:>11}" for v in vals))


if __name__ == "__main__":
    sys.exit(main())
