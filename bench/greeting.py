"""Greeting latency: Exotel `start` sent → first greeting audio frame received, N calls starting
together, with the greeting cache cold, warm in memory, and warm on disk after a restart.

    .venv/bin/python bench/greeting.py --calls 100 [--tenant bakery] \
        [--out bench/results/greeting.json]

Processes (all on 127.0.0.1): the Gemini Live double (`bench/_common.py double`, real-time
paced audio, TLS), `receptionist serve` (one process, SQLite, no post-call worker) and this
process as N Exotel callers. Each round opens N WebSockets first, then sends every `start` in
one go and times each call from its own `start` to its first `media` frame; every call stays
until the greeting's `mark` (the greeting heard out, which is what fills the cache on a cold
call), then hangs up.

Rounds, in one run:
1. cold: empty cache directory, fresh server: every call greets through the model.
2. warm, warm_repeat: the same server, the cache filled by round 1: played from memory.
3. restart: a new server process over the same directory: played from the file.

Each round also reports the bridge's own view from the call rows (`start` read → first frame
sent, and where each greeting came from), which separates the bridge from the socket and the
callers' side on this shared 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from receptionist.telephony import exotel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    Proc,
    bench_env,
    free_port,
    git_commit,
    machine_info,
    percentile,
    serve_argv,
    write_json,
)


def log(msg: str) -> None:
    print(f"[greeting {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _wait(cond: Any, child: Proc, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        with contextlib.suppress(OSError, ValueError):
            if cond():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name}: {what} not within {timeout_s:g} s:\n{child.tail()}")


def _healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
        return bool(resp.status == 200)


# --- callers ------------------------------------------------------------------------------------


@dataclass
class Call:
    index: int
    ws: ClientConnection
    call_sid: str
    started: float = 0.0
    first_audio: float | None = None
    greeted: float | None = None  # its mark: the greeting all sent
    audio_bytes: int = 0
    error: str | None = None

    @property
    def stream_sid(self) -> str:
        return "MZ" + self.call_sid


async def _listen(call: Call, guard_s: float) -> None:
    """Until the greeting's mark (or the guard): the first media frame's time, audio length."""
    try:
        async with asyncio.timeout(guard_s):
            async for raw in call.ws:
                now = time.perf_counter()
                text = raw if isinstance(raw, str) else raw.decode()
                if '"event":"media"' in text:
                    if call.first_audio is None:
                        call.first_audio = now
                    call.audio_bytes += len(text)  # base64: only a size indication
                elif '"event":"mark"' in text:
                    call.greeted = now
                    return
    except TimeoutError:
        call.error = "no greeting mark within the guard"
    except Exception as exc:  # a closed or broken stream: counted, the round goes on
        call.error = f"{type(exc).__name__}: {exc}"[:200]


async def one_round(url: str, n: int, tag: str, guard_s: float) -> list[Call]:
    calls: list[Call] = []
    for i in range(n):  # every line open first: "starting together" means the starts
        ws = await connect(url, max_size=2**22, compression=None)
        calls.append(Call(i, ws, f"CAgreet{tag}{i:04d}{os.urandom(3).hex()}"))
    listeners = [asyncio.create_task(_listen(c, guard_s)) for c in calls]
    frames = [
        (
            exotel.connected_frame(),
            exotel.start_frame(
                stream_sid=c.stream_sid,
                call_sid=c.call_sid,
                from_number="+919800000042",
                to_number="+918000000001",
                custom_parameters={},
                sequence=1,
            ),
        )
        for c in calls
    ]
    for c, (connected, _) in zip(calls, frames, strict=True):
        await c.ws.send(connected)
    t0 = time.perf_counter()
    for c, (_, start) in zip(calls, frames, strict=True):
        c.started = time.perf_counter()
        await c.ws.send(start)
    log(f"{n} starts sent in {(time.perf_counter() - t0) * 1000:.1f} ms")
    await asyncio.gather(*listeners)
    for c in calls:
        with contextlib.suppress(Exception):
            await c.ws.send(exotel.stop_frame(c.stream_sid, c.call_sid, sequence=2))
            await c.ws.close()
    return calls


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _spread(ms: list[float]) -> dict[str, float | None]:
    return {
        "p50": _r(percentile(ms, 50)),
        "p90": _r(percentile(ms, 90)),
        "p99": _r(percentile(ms, 99)),
        "max": _r(max(ms) if ms else None),
        "min": _r(min(ms) if ms else None),
    }


def server_side(db: Path, calls: list[Call], wait_s: float = 30.0) -> dict[str, Any]:
    """The bridge's own view from the call rows: `start` read → first frame sent, and where
    each greeting came from."""
    sids = {c.call_sid for c in calls}
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT call_sid, status, stats FROM call_details").fetchall()
        mine = [(status, json.loads(stats or "{}")) for sid, status, stats in rows if sid in sids]
        if len(mine) >= len(sids) and all(status != "in_progress" for status, _ in mine):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    sources: dict[str, int] = {}
    ms: list[float] = []
    for _, stats in mine:
        src = str(stats.get("greeting_source") or "none")
        sources[src] = sources.get(src, 0) + 1
        if stats.get("start_to_greeting_ms") is not None:
            ms.append(float(stats["start_to_greeting_ms"]))
    return {"rows": len(mine), "greeting_source": sources, "start_to_first_frame_ms": _spread(ms)}


def summarise(calls: list[Call]) -> dict[str, Any]:
    ms = [(c.first_audio - c.started) * 1000 for c in calls if c.first_audio is not None]
    greeted = [(c.greeted - c.started) * 1000 for c in calls if c.greeted is not None]
    r = _r
    return {
        "calls": len(calls),
        "greeted": len(greeted),
        "errors": sorted({c.error for c in calls if c.error}),
        "start_to_first_audio_ms": _spread(ms),
        "start_to_greeting_sent_ms_p50": r(percentile(greeted, 50)),
    }


# --- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    env = bench_env()
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    ready, ca_file = tmp / "double.json", tmp / "ca.pem"
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
        ],
        env,
        tmp / "double.log",
    )
    children = [double]
    try:
        _wait(ready.is_file, double, 30, "ready file")
        gport = int(json.loads(ready.read_text())["port"])
        port = free_port()
        cache_dir = tmp / "greetings"
        senv = dict(env)
        senv.update(
            DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
            GEMINI_API_KEY="bench-key",
            GEMINI_BASE_URL=f"https://127.0.0.1:{gport}",
            GEMINI_CA_FILE=str(ca_file),
            TENANTS_DIR=str(REPO_ROOT / "tenants"),
            SPOOL_DIR=str(tmp / "spool"),
            GREETING_CACHE_DIR=str(cache_dir),
            LOG_LEVEL="WARNING",
            # the bench finds the limit itself: no admission control refusing calls on the way
            MAX_CALLS_PER_PROCESS="0",
            ADMISSION_MAX_LOOP_LAG_MS="0",
            RUN_WORKER="false",
            WORKERS="1",
        )
        url = f"ws://127.0.0.1:{port}/exotel/{args.tenant}"
        rounds: dict[str, Any] = {}
        for name in ("cold", "warm", "warm_repeat", "restart"):
            if name in ("cold", "restart"):  # a fresh server process (cold: and an empty directory)
                for child in children[1:]:
                    child.stop()
                del children[1:]
                server = Proc("server", serve_argv(port), senv, tmp / f"server-{name}.log")
                children.append(server)
                _wait(lambda: _healthy(port), server, 60, "/healthz")
                # one call of another tenant: the process's first call pays its lazy imports,
                # which are not what this bench measures
                await one_round(url.replace(args.tenant, args.warmup_tenant), 1, "w", 60)
            files = sorted(p.name for p in cache_dir.glob("*.greeting"))
            log(f"{name}: {args.calls} calls starting together ({len(files)} cached file(s))")
            calls = await one_round(url, args.calls, name[0], args.guard_s)
            rounds[name] = summarise(calls) | {"cache_files_before": len(files)}
            rounds[name]["server"] = server_side(tmp / "bench.db", calls)
            log(f"{name}: server side {rounds[name]['server']}")
            log(
                f"{name}: {rounds[name]['start_to_first_audio_ms']} errors={rounds[name]['errors']}"
            )
            await asyncio.sleep(args.settle_s)  # the last calls are stored, the cache file written
        return rounds
    finally:
        for child in reversed(children):
            child.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100, help="calls starting together per round")
    ap.add_argument("--tenant", default="bakery")
    ap.add_argument(
        "--warmup-tenant", default="clinic", help="tenant of each server's first, unmeasured call"
    )
    ap.add_argument(
        "--settle-s", type=float, default=5.0, help="pause after each round (rows written)"
    )
    ap.add_argument("--guard-s", type=float, default=60.0, help="longest wait for a greeting")
    ap.add_argument(
        "--json",
        "--out",
        dest="out",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "greeting.json",
        help="where the figures go (JSON)",
    )
    args = ap.parse_args(argv)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="greeting-bench-") as tmp:
        rounds = asyncio.run(run(args, Path(tmp)))
    result = {
        "bench": "greeting",
        "what": "Exotel start sent -> first greeting media frame received, N calls together",
        "started_at": started.isoformat(),
        "git_commit": git_commit(),
        "machine": machine_info(),
        "calls": args.calls,
        "tenant": args.tenant,
        "rounds": rounds,
    }
    write_json(args.out, result)
    print(json.dumps(rounds, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
