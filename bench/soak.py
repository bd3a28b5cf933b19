"""Soak bench (not CI): simulated calls placed continuously against a real `receptionist serve`
with the Gemini Live double, the server's memory sampled all along, and a verdict on whether it
stays flat.

    .venv/bin/python bench/soak.py --minutes 60 --concurrency 20 --calls-per-minute 60 \
        [--sample-s 60] [--warmup-min 5] [--turns 2] [--db sqlite|URL] \
        [--json bench/results/soak_<date>.json]

Three processes, loopback only, as in bench/bridge_load.py: the Live double (TLS), the server
(one process, RUN_WORKER=false: the post-call pipeline has its own bench) and this one (the
callers). A call starts every 60/--calls-per-minute seconds unless --concurrency calls are
already live (then that start is skipped and counted). Every --sample-s seconds it records the
server's RSS, open file descriptors, threads, the calls live (`/healthz`), the SQLite file's size
and the calls placed so far. The figure is the slope of RSS after the warm-up (least squares,
KB per hour) and the verdict: "flat" when the growth that slope predicts over the measured
window is within the noise (twice the residuals' standard deviation, or 1 % of the mean RSS,
whichever is larger); "growing" otherwise. The same for the second half of the window alone
tells growth that levels off from growth that keeps on. `--reanalyse RESULT.json` recomputes
the figures of an earlier run's samples (e.g. with another --warmup-min).

Exit code: 0 flat and no call failed, 1 growing or some calls failed, 2 the bench failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
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
    bench_env,
    free_port,
    git_commit,
    machine_info,
    serve_argv,
    short_lines,
    write_json,
)
from bridge_load import _wait_healthz, _wait_ready_file, _wait_tls


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the verdict --------------------------------------------------------------------------------


def slope_verdict(series: list[tuple[float, float]], mean_rss_kb: float) -> dict[str, Any]:
    """Least-squares slope of (seconds, RSS KB) in KB per hour, and whether the growth it
    predicts over the window stands out of the noise."""
    n = len(series)
    if n < 3:
        return {"verdict": "too_short", "samples": n}
    xs = [t for t, _ in series]
    ys = [y for _, y in series]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys, strict=True)]
    sd = math.sqrt(sum(r * r for r in resid) / max(1, n - 2))
    window_s = xs[-1] - xs[0]
    growth = slope * window_s
    noise = max(2.0 * sd, 0.01 * mean_rss_kb)
    return {
        "verdict": "flat" if growth <= noise else "growing",
        "slope_kb_per_hour": round(slope * 3600.0, 1),
        "predicted_growth_kb_over_window": round(growth, 1),
        "noise_kb": round(noise, 1),
        "residual_sd_kb": round(sd, 1),
        "window_s": round(window_s, 1),
        "samples": n,
        "rule": "flat when slope x window <= max(2 x residual sd, 1 % of mean RSS)",
    }


def analyse(samples: list[dict[str, Any]], warmup_min: float) -> dict[str, Any]:
    """The verdict on the samples taken while calls ran (the last one is the idle server after
    the run), after the warm-up; and the slope of the second half of that window alone, which
    tells a growth that levels off (caches filling) from one that keeps on (a leak)."""
    steady = [s for s in samples[:-1] if s["t_s"] >= warmup_min * 60.0]
    mean_rss = sum(s["rss_kb"] for s in steady) / len(steady) if steady else 0.0
    out = slope_verdict([(s["t_s"], s["rss_kb"]) for s in steady], mean_rss)
    half = steady[len(steady) // 2 :]
    late = slope_verdict([(s["t_s"], s["rss_kb"]) for s in half], mean_rss)
    out["rss_kb_after_warmup"] = steady[0]["rss_kb"] if steady else None
    out["second_half_slope_kb_per_hour"] = late.get("slope_kb_per_hour")
    out["second_half_verdict"] = late["verdict"]
    return out


# --- sampling ------------------------------------------------------------------------------------


def _healthz(port: int) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with (
        contextlib.suppress(OSError, ValueError),
        opener.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp,
    ):
        return int(json.loads(resp.read())["active_calls"])
    return None


def _db_bytes(db_file: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += (db_file.parent / (db_file.name + suffix)).stat().st_size
    return total


def _sample(
    server_pid: int, port: int, db_file: Path | None, t0: float, counts: dict[str, int]
) -> dict[str, Any]:
    proc = psutil.Process(server_pid)
    with proc.oneshot():
        rss = proc.memory_info().rss
        fds = proc.num_fds()
        threads = proc.num_threads()
    return {
        "t_s": round(time.monotonic() - t0, 1),
        "rss_kb": rss // 1024,
        "open_fds": fds,
        "threads": threads,
        "active_calls": _healthz(port),
        "db_bytes": _db_bytes(db_file) if db_file is not None else None,
        **counts,
    }


# --- the run --------------------------------------------------------------------------------------


async def _drive(
    url: str,
    args: argparse.Namespace,
    until: float,
    counts: dict[str, int],
    errors: list[str],
) -> None:
    """Start calls at the set rate until `until`, never more than --concurrency at once."""
    from receptionist.sim.caller import CallerScript, CallOptions, place_call

    script = CallerScript(utterances=[h for h, _ in short_lines(args.turns)])
    live: set[asyncio.Task[None]] = set()
    every = 60.0 / args.calls_per_minute

    async def one() -> None:
        res = await place_call(
            CallOptions(url=url, realtime=True, sample_rate=8000, max_call_s=args.max_call_s),
            script,
        )
        counts["calls_done"] += 1
        if not res.ok:
            counts["calls_failed"] += 1
            if len(errors) < 50:
                errors.append(f"{res.call_sid}: {res.error}")

    next_at = time.monotonic()
    while time.monotonic() < until:
        if len(live) < args.concurrency:
            task = asyncio.create_task(one())
            live.add(task)
            task.add_done_callback(live.discard)
            counts["calls_started"] += 1
        else:
            counts["starts_skipped"] += 1
        next_at += every
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if live:
        await asyncio.gather(*live, return_exceptions=True)


async def run_soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    ca_file, ready = tmp / "ca.pem", tmp / "double.json"
    env = bench_env()
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    double = Proc(
        "double",
        [sys.executable, str(Path(__file__).resolve().parent / "_common.py"), "double",
         "--ready-file", str(ready), "--ca-out", str(ca_file), "--api-key", "bench-key",
         "--turns", str(args.turns)],
        env,
        tmp / "double.log",
    )  # fmt: skip
    procs = [double]
    try:
        gport = int(_wait_ready_file(ready, double, 30)["port"])
        _wait_tls(gport, ca_file, 15)
        db_file = tmp / "soak.db" if args.db == "sqlite" else None
        port = free_port()
        senv = dict(env)
        senv.update(
            DATABASE_URL=f"sqlite:///{db_file}" if db_file is not None else args.db,
            GEMINI_API_KEY="bench-key",
            GEMINI_BASE_URL=f"https://127.0.0.1:{gport}",
            GEMINI_CA_FILE=str(ca_file),
            TENANTS_DIR=str(REPO_ROOT / "tenants"),
            SPOOL_DIR=str(tmp / "spool"),
            LOG_LEVEL="WARNING",
            RUN_WORKER="false",
            WORKERS="1",
        )
        server = Proc(
            "server",
            serve_argv(port),
            senv,
            tmp / "server.log",
        )
        procs.append(server)
        _wait_healthz(port, server, 60)
        url = f"ws://127.0.0.1:{port}/exotel/bakery"
        log(
            f"server pid {server.pid} on {url}; {args.minutes:g} min, {args.calls_per_minute:g} "
            f"calls/min, at most {args.concurrency} live, a sample every {args.sample_s:g} s"
        )
        counts = {"calls_started": 0, "calls_done": 0, "calls_failed": 0, "starts_skipped": 0}
        errors: list[str] = []
        t0 = time.monotonic()
        samples = [_sample(server.pid, port, db_file, t0, counts)]
        driver = asyncio.create_task(_drive(url, args, t0 + args.minutes * 60.0, counts, errors))
        while not driver.done():
            await asyncio.wait([driver], timeout=args.sample_s)
            if not server.alive():
                driver.cancel()
                raise RuntimeError(f"server died:\n{server.tail()}")
            samples.append(_sample(server.pid, port, db_file, t0, counts))
            s = samples[-1]
            log(
                f"t={s['t_s']:.0f}s rss={s['rss_kb'] / 1024:.1f} MB fds={s['open_fds']} "
                f"live={s['active_calls']} done={s['calls_done']} failed={s['calls_failed']}"
            )
        await driver
        # once the last calls' rows are written: the idle figure after the run
        await asyncio.sleep(2.0)
        samples.append(_sample(server.pid, port, db_file, t0, counts))
        server_exit = server.stop()
    finally:
        for p in reversed(procs):
            p.stop()
    return {
        "bench": "soak",
        "started_at": started_at.isoformat(),
        "machine": machine_info(),
        "load_avg_1_5_15_at_end": os.getloadavg(),
        "git_commit": git_commit(),
        "parameters": {
            "minutes": args.minutes,
            "concurrency": args.concurrency,
            "calls_per_minute": args.calls_per_minute,
            "sample_s": args.sample_s,
            "warmup_min": args.warmup_min,
            "turns": args.turns,
            "db": args.db,
            "workers": 1,
            "run_worker": False,
        },
        "figures": {
            **analyse(samples, args.warmup_min),
            "rss_kb_first": samples[0]["rss_kb"],
            "rss_kb_last_live": samples[-2]["rss_kb"],
            "rss_kb_idle_after": samples[-1]["rss_kb"],
            "rss_kb_max": max(s["rss_kb"] for s in samples),
            "open_fds_max": max(s["open_fds"] for s in samples),
            "open_fds_idle_after": samples[-1]["open_fds"],
            "threads_max": max(s["threads"] for s in samples),
            **counts,
            "server_exit_code": server_exit,
        },
        "errors": errors,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=20, help="most calls live at once")
    ap.add_argument("--calls-per-minute", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
    ap.add_argument(
        "--warmup-min", type=float, default=None, help="left out of the slope (default: 10 %%)"
    )
    ap.add_argument("--turns", type=int, default=2)
    ap.add_argument("--max-call-s", type=float, default=120.0)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a database URL")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument(
        "--reanalyse",
        type=Path,
        default=None,
        help="recompute the figures of an earlier result's samples (no run); written to --json",
    )
    args = ap.parse_args(argv)
    if args.reanalyse is not None:
        res = json.loads(args.reanalyse.read_text())
        warm = res["parameters"]["warmup_min"] if args.warmup_min is None else args.warmup_min
        res["parameters"]["warmup_min"] = warm
        res["figures"].update(analyse(res["samples"], warm))
        write_json(args.json or args.reanalyse, res)
        return 0
    if args.warmup_min is None:
        args.warmup_min = args.minutes / 10.0
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        res = asyncio.run(run_soak(args, tmp))
    except RuntimeError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    f = res["figures"]
    log(
        f"{f['verdict']}: slope {f.get('slope_kb_per_hour')} KB/h over {f.get('window_s')} s "
        f"(noise {f.get('noise_kb')} KB); RSS {f['rss_kb_first']} -> {f['rss_kb_last_live']} KB; "
        f"calls {f['calls_done']} done, {f['calls_failed']} failed"
    )
    if args.json is not None:
        write_json(args.json, res)
    return 0 if f["verdict"] == "flat" and not f["calls_failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
