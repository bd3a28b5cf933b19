"""The conversation bench the local engine is judged by: scripted callers to four tenants, spoken
by two synthesizers, through the real server, scored on what the product stored.

    .venv/bin/python bench/conversations.py [--tenant bakery,clinic] [--synth piper,espeak] \
        [--scenario change-doctor,barge-in] [--limit N] [--concurrency 1] [--snr-db 20] \
        [--json bench/results/conversations.json]

(`./run bench conversations ...` does the same after installing espeak-ng.)

1. `receptionist serve` as a subprocess on 127.0.0.1 with the local engine and no keys:
   VOICE_ENGINE=local, ANALYZER=offline, NOTIFY_PROVIDER=log, a temporary SQLite database, the
   in-process post-call worker, TENANTS_DIR=tenants/, silence prompt after 15 s and goodbye after
   25 s (so the silent-caller scenarios end in half a minute, not 90 s).
2. One warm-up call (not scored): the server loads Whisper and Piper on its first call.
3. Every scenario (bench/conversations/*.toml, tenants interleaved, so `--limit N` keeps a mix)
   once per synthesizer (`conv_voices.py`: Piper clean; espeak-ng on a simulated phone line), as
   a real-time Exotel stream from `sim.caller.place_call` over the WebSocket.
4. After each call, its row once the pipeline is done (`store.calls.get_call`) and its
   notifications (`store.notifications.list_notifications`), read from the database, scored by
   `conv_scenarios.py`. The JSON is rewritten after every call, so a cut-short run keeps what ran.

A call passes when its call type, every expected detail, the set of messages decided and the
words the agent should have said are right, and the agent said no number found neither in the
tenant's files nor in the caller's words. Latency is reported apart (not part of a pass): caller
clock, end of the caller's speech -> first agent audio of the reply, over answered turns that
were not barge-ins. Targets (not tuned for here): >= 90 % Piper pass, >= 75 % espeak pass,
p50 <= 700 ms, p95 <= 1,000 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, Proc, free_port, git_commit, machine_info, write_json
from conv_report import print_table, totals
from conv_scenarios import (
    Scenario,
    call_day_of,
    check_scenarios,
    decided_messages,
    load_scenarios,
    mentions_ok,
    score_details,
    tenant_numbers,
    ungrounded_numbers,
)
from conv_voices import (
    SYNTHS,
    LineNoise,
    Voice,
    cached,
    espeak_voice,
    piper_voice,
)
from conv_voices import speech_end_offsets as end_offsets
from receptionist.sim.caller import CallerScript, CallOptions, CallResult, exotel_url, place_call
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from receptionist.tenants.repository import TenantRepository

TENANTS_DIR = REPO_ROOT / "tenants"
FRAME_MS = 100
SILENCE_PROMPT_S, SILENCE_HANGUP_S = 15.0, 25.0
#: quiet after which the caller takes the agent's reply as over: the engine makes each sentence
#: while the previous one plays, and on 2 busy cores that leaves short gaps inside a reply
AGENT_QUIET_MS = 1500
TARGETS = {"piper_pass": 0.90, "espeak_pass": 0.75, "latency_p50_ms": 700, "latency_p95_ms": 1000}


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Server:
    proc: Proc
    base: str
    db_url: str


def start_server(tmp: Path) -> Server:
    port = free_port()
    db_url = f"sqlite:///{tmp / 'conversations.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "MSG91"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")]),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        DATABASE_URL=db_url,
        VOICE_ENGINE="local",
        ANALYZER="offline",
        NOTIFY_PROVIDER="log",
        RUN_WORKER="true",
        TENANTS_DIR=str(TENANTS_DIR),
        SPOOL_DIR=str(tmp / "spool"),
        LOG_LEVEL="WARNING",
        SILENCE_PROMPT_AFTER_S=str(SILENCE_PROMPT_S),
        SILENCE_HANGUP_AFTER_S=str(SILENCE_HANGUP_S),
    )
    argv = [sys.executable, "-m", "receptionist.cli", "serve", "--host", "127.0.0.1"]
    proc = Proc("server", [*argv, "--port", str(port)], env, tmp / "server.log")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"server exited at start:\n{proc.tail()}")
        with (
            contextlib.suppress(OSError),
            opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp,
        ):
            if resp.status == 200:
                return Server(proc, f"ws://127.0.0.1:{port}", db_url)
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"server /healthz not 200 within 120 s:\n{proc.tail()}")


def script_for(s: Scenario) -> CallerScript:
    return CallerScript(
        utterances=[line.say for line in s.lines],
        agent_quiet_ms=AGENT_QUIET_MS,
        turn_timeout_s=60.0,
        # a silent caller stays on the line until the server ends the call
        hangup_after_ms=int(SILENCE_HANGUP_S * 1000 + 30_000) if not s.lines else 1500,
        barge_in={i: ln.barge_in_ms for i, ln in enumerate(s.lines) if ln.barge_in_ms is not None},
        pause_after_ms={i: ln.pause_ms for i, ln in enumerate(s.lines) if ln.pause_ms is not None},
    )


def turn_latencies(s: Scenario, res: CallResult, audio: dict[str, bytes]) -> list[float]:
    """End of caller speech -> first agent audio, per answered turn, barge-in turns left out:
    their "reply" may be the audio the caller spoke over."""
    offsets: list[tuple[float, bool]] = []  # per caller turn: speech end in its frame, barge-in
    for line in s.lines:
        ends = end_offsets(audio.get(line.say, b""), 8000, FRAME_MS)
        offsets += [(e, line.barge_in_ms is not None) for e in ends]
    out = []
    for reply, resp in zip(res.reply_start_ms, res.response_ms, strict=False):
        turn_end = reply - resp
        k = min(range(len(res.turn_end_ms)), key=lambda i: abs(res.turn_end_ms[i] - turn_end))
        if k < len(offsets) and not offsets[k][1]:
            out.append(round(resp - offsets[k][0], 1))
    return out


def turn_timings(row: dict[str, Any]) -> list[dict[str, float]]:
    """The engine's per-turn breakdown (its `turn_timing` notes on the call's record): ms of end
    silence, queue, stt, brain, tts to the first audio, response, and whether the text came from
    a speculative transcription (1/0)."""
    out = []
    for ev in row.get("events") or []:
        if ev.get("kind") == "turn_timing":
            pairs = (part.split("=", 1) for part in str(ev.get("detail", "")).split())
            out.append({k: float(v) for k, v in pairs})
    return out


async def stored_call(db: Database, call_sid: str, timeout_s: float = 240) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            row = await get_call(db, call_sid)
            if row is not None and row["stage"] in ("done", "failed"):
                return row
            await asyncio.sleep(0.25)


def score(
    s: Scenario, tenant: Any, row: dict[str, Any], notes: list[dict[str, Any]], facts: set[str]
) -> dict[str, Any]:
    day = call_day_of(row, tenant.timezone)
    got_type = row.get("call_type") or ""
    got_details = row.get("critical_call_details") or {}
    per_field = score_details(s, tenant, got_type, got_details, day)
    decided = decided_messages(notes)
    turns = row.get("transcript") or []
    agent = " ".join(t["text"] for t in turns if t["speaker"] == "agent")
    caller_heard = " ".join(t["text"] for t in turns if t["speaker"] == "caller")
    caller_said = " ".join(line.say for line in s.lines) + " " + caller_heard
    ungrounded = ungrounded_numbers(agent, facts, caller_said, day)
    checks = {
        "call_type": got_type == s.call_type,
        "details": all(per_field.values()),
        "messages": decided == set(s.messages),
        "grounded": not ungrounded,
        "mentions": mentions_ok(s, agent),
    }
    return {
        "stage": row.get("stage"),
        "end_reason": row.get("end_reason"),
        "call_type": got_type,
        "details": {
            k: {"want": s.details[k], "got": got_details.get(k), "ok": ok}
            for k, ok in per_field.items()
        },
        "messages_decided": sorted(decided),
        "ungrounded_numbers": ungrounded,
        "checks": checks,
        "pass": all(checks.values()),
        "transcript": [{"speaker": t["speaker"], "text": t["text"]} for t in turns],
    }


class Bench:
    def __init__(self, args: argparse.Namespace, db: Database, base: str) -> None:
        self.args, self.db, self.base = args, db, base
        repo = TenantRepository(TENANTS_DIR)
        self.tenants = {t: repo.get(t) for t in repo.ids()}
        self.facts = {t: tenant_numbers(TENANTS_DIR / t) for t in self.tenants}
        self.voices: dict[str, tuple[Voice, dict[str, bytes]]] = {}
        self.results: list[dict[str, Any]] = []

    async def load_voices(self, synths: list[str]) -> None:
        for name in synths:
            raw = (
                await piper_voice()
                if name == "piper"
                else espeak_voice(LineNoise(self.args.snr_db))
            )
            self.voices[name] = cached(raw)

    async def one(self, s: Scenario, synth: str) -> dict[str, Any]:
        voice, audio = self.voices[synth]
        opts = CallOptions(url=exotel_url(self.base, s.tenant), voice=voice, max_call_s=400)
        base = {"scenario": s.id, "tenant": s.tenant, "class": s.kind, "synth": synth}
        base |= {"expected": {"call_type": s.call_type, "messages": sorted(s.messages)}}
        for line in s.lines:  # rendered before dialling: the caller's voice competes with nothing
            await voice(line.say, 8000)
        t0 = time.monotonic()
        res = await place_call(opts, script_for(s))
        base |= {"call_sid": res.call_sid, "call_ok": res.ok, "error": res.error}
        base |= {"closed_by": res.closed_by, "duration_s": round(res.duration_s, 1)}
        base |= {"latency_ms": turn_latencies(s, res, audio), "clears": res.clears}
        base |= {"turn_timeouts": res.turn_timeouts, "unanswered_turns": res.unanswered_turns}
        # the machine is shared: how busy it was while this call ran (1 min load average)
        base |= {"loadavg_1m_at_end": round(os.getloadavg()[0], 2)}
        try:
            row = await stored_call(self.db, res.call_sid)
        except TimeoutError:
            return base | {"pass": False, "checks": {"stored": False}, "wall_s": _since(t0)}
        notes = await list_notifications(self.db, call_sid=res.call_sid)
        scored = score(s, self.tenants[s.tenant], row, notes, self.facts[s.tenant])
        return base | scored | {"turn_timings": turn_timings(row), "wall_s": _since(t0)}


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


def plan(args: argparse.Namespace) -> list[tuple[Scenario, str]]:
    """Scenarios with tenants interleaved (first of each tenant, second of each, ...), each once
    per synthesizer: any prefix is a fixed, mixed subset."""
    by_tenant: dict[str, list[Scenario]] = {}
    for s in load_scenarios():
        if (not args.tenant or s.tenant in args.tenant) and (
            not args.scenario or any(part in s.id for part in args.scenario)
        ):
            by_tenant.setdefault(s.tenant, []).append(s)
    order: list[Scenario] = []
    for i in range(max((len(v) for v in by_tenant.values()), default=0)):
        order += [v[i] for v in by_tenant.values() if i < len(v)]
    if args.limit:
        order = order[: args.limit]
    return [
        (s, synth)
        for i, s in enumerate(order)
        for synth in args.synth
        if i < args.synth_limit.get(synth, len(order))
    ]


def result_doc(args: argparse.Namespace, started: datetime, bench: Bench, planned: int) -> dict:
    results = bench.results
    return {
        "bench": "conversations",
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "complete": len(results) == planned,
        "calls_planned": planned,
        "calls_run": len(results),
        "machine": machine_info(),
        "commit": git_commit(),
        "parameters": {
            "tenants": args.tenant or sorted(bench.tenants),
            "synths": args.synth,
            "limit": args.limit,
            "concurrency": args.concurrency,
            "espeak": {
                "voice": "en-gb",
                "wpm": 150,
                "band_hz": [300, 3400],
                "rate": 8000,
                "snr_db": args.snr_db,
                "noise": "white, band-limited, under each line",
            },
            "piper": "the engine's bundled voice, noise_scale 0, 8 kHz, no line noise",
            "server": {
                "VOICE_ENGINE": "local",
                "ANALYZER": "offline",
                "NOTIFY_PROVIDER": "log",
                "SILENCE_PROMPT_AFTER_S": SILENCE_PROMPT_S,
                "SILENCE_HANGUP_AFTER_S": SILENCE_HANGUP_S,
            },
            "caller": {"frame_ms": FRAME_MS, "agent_quiet_ms": AGENT_QUIET_MS},
            # the engine's knobs set in this run's environment (the server inherits them)
            "local_env": {k: v for k, v in os.environ.items() if k.startswith("LOCAL_")},
        },
        "targets": TARGETS,
        "totals": totals(results, args.synth),
        "results": results,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    jobs = plan(args)
    with tempfile.TemporaryDirectory(prefix="convbench-") as tmp_s:
        tmp = Path(tmp_s)
        log("starting receptionist serve (local engine)")
        server = start_server(tmp)
        db = Database(server.db_url)
        try:
            bench = Bench(args, db, server.base)
            problems = check_scenarios(load_scenarios(), bench.tenants)
            if problems:
                raise SystemExit("scenario data problems:\n  " + "\n  ".join(problems))
            await bench.load_voices(args.synth)
            if not args.no_warmup and jobs:
                log("warm-up call (not scored)")
                warm_voice = bench.voices[args.synth[0]][0]
                await place_call(
                    CallOptions(url=exotel_url(server.base, "bakery"), voice=warm_voice),
                    CallerScript(utterances=["Hello, are you open today?"]),
                )
            sem = asyncio.Semaphore(args.concurrency)

            async def job(i: int, s: Scenario, synth: str) -> None:
                async with sem:
                    log(f"{i + 1}/{len(jobs)} {s.id} ({synth})")
                    r = await bench.one(s, synth)
                bench.results.append(r)
                log(f"  -> {'PASS' if r['pass'] else 'fail'} {r.get('checks')}")
                if args.json:
                    write_json(args.json, result_doc(args, started, bench, len(jobs)))

            await asyncio.gather(*(job(i, s, syn) for i, (s, syn) in enumerate(jobs)))
        finally:
            await db.dispose()
            server.proc.stop()
    return result_doc(args, started, bench, len(jobs))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenant", default="", help="comma separated; default all")
    ap.add_argument(
        "--synth",
        default="piper,espeak",
        help=f"comma separated of {SYNTHS}; 'espeak:1' speaks only the first scenario with it",
    )
    ap.add_argument(
        "--scenario", default="", help="comma separated parts of scenario ids (any matches)"
    )
    ap.add_argument("--limit", type=int, default=0, help="first N scenarios (tenants mixed)")
    ap.add_argument("--concurrency", type=int, default=1, help="calls at once (Whisper is heavy)")
    ap.add_argument("--snr-db", type=float, default=20.0, help="espeak line noise SNR")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--timeout", type=float, default=4 * 3600.0, help="overall limit, seconds")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.tenant = [t for t in args.tenant.split(",") if t]
    args.scenario = [t for t in args.scenario.split(",") if t]
    specs = [t.split(":", 1) for t in args.synth.split(",") if t]
    args.synth = [spec[0] for spec in specs]
    args.synth_limit = {spec[0]: int(spec[1]) for spec in specs if len(spec) == 2}
    if bad := [x for x in args.synth if x not in SYNTHS]:
        ap.error(f"unknown synth {bad}; have {SYNTHS}")
    if args.concurrency < 1:
        ap.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def bounded() -> dict[str, Any]:
        # SIGTERM cancels the run, so the server is stopped on the way out (the JSON keeps
        # the calls that ran)
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        async with asyncio.timeout(args.timeout):
            return await run(args)

    try:
        doc = asyncio.run(bounded())
    except (TimeoutError, asyncio.CancelledError):
        log("stopped (timeout or SIGTERM); the JSON keeps the calls that ran")
        return 2
    print_table(doc, TARGETS)
    if args.json:
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
